package commands

import (
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/mpcbot/mpcbot/plivo"
)

var update = flag.Bool("update", false, "rewrite golden files")

func name(t *testing.T, s string) plivo.MPC {
	t.Helper()
	m, err := plivo.MPCByName(s)
	if err != nil {
		t.Fatalf("MPCByName(%q): %v", s, err)
	}
	return m
}

func members(ids ...string) []plivo.Member {
	ms := make([]plivo.Member, len(ids))
	for i, id := range ids {
		ms[i] = plivo.Member(id)
	}
	return ms
}

func TestParseChange(t *testing.T) {
	uuidMPC, err := plivo.MPCByUUID("d5c8be43-87d0-4ba6-90a1-011bb6ab0a00")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		text string
		want Change
	}{
		{"hold test_mpc_1 all", Change{Actions: []Action{Hold}, MPC: name(t, "test_mpc_1"), Members: members("all")}},
		{"HOLD Test_MPC_1 ALL", Change{Actions: []Action{Hold}, MPC: name(t, "Test_MPC_1"), Members: members("all")}},
		{"  mute   test_mpc_1   38291045  ", Change{Actions: []Action{Mute}, MPC: name(t, "test_mpc_1"), Members: members("38291045")}},
		{"mute,hold test_mpc_1 all", Change{Actions: []Action{Mute, Hold}, MPC: name(t, "test_mpc_1"), Members: members("all")}},
		{"hold+mute test_mpc_1 all", Change{Actions: []Action{Mute, Hold}, MPC: name(t, "test_mpc_1"), Members: members("all")}},
		{"mute, hold test_mpc_1 all", Change{Actions: []Action{Mute, Hold}, MPC: name(t, "test_mpc_1"), Members: members("all")}},
		{"mute ,hold test_mpc_1 all", Change{Actions: []Action{Mute, Hold}, MPC: name(t, "test_mpc_1"), Members: members("all")}},
		{"mute,mute test_mpc_1 all", Change{Actions: []Action{Mute}, MPC: name(t, "test_mpc_1"), Members: members("all")}},
		{"unmute,unhold,uncoach x 7", Change{Actions: []Action{Unmute, Unhold, Uncoach}, MPC: name(t, "x"), Members: members("7")}},
		{"coach test_mpc_1 229", Change{Actions: []Action{Coach}, MPC: name(t, "test_mpc_1"), Members: members("229")}},
		{`mute "mpc 1000" all`, Change{Actions: []Action{Mute}, MPC: name(t, "mpc 1000"), Members: members("all")}},
		{"mute “mpc 1000” all", Change{Actions: []Action{Mute}, MPC: name(t, "mpc 1000"), Members: members("all")}},
		{"mute „mpc  1000“ all", Change{Actions: []Action{Mute}, MPC: name(t, "mpc 1000"), Members: members("all")}},
		{"mute ‘mpc 1000’ all", Change{Actions: []Action{Mute}, MPC: name(t, "mpc 1000"), Members: members("all")}},
		{"mute «Östermalm»  all", Change{Actions: []Action{Mute}, MPC: name(t, "Östermalm"), Members: members("all")}},
		{"mute Tikrīt all", Change{Actions: []Action{Mute}, MPC: name(t, "Tikrīt"), Members: members("all")}},
		{"mute O’Brien all", Change{Actions: []Action{Mute}, MPC: name(t, "O’Brien"), Members: members("all")}},
		{"mute sales—east all", Change{Actions: []Action{Mute}, MPC: name(t, "sales—east"), Members: members("all")}},
		{"mute\u00a0test_mpc_1\u00a0all", Change{Actions: []Action{Mute}, MPC: name(t, "test_mpc_1"), Members: members("all")}},
		{"\u200fmute test_mpc_1\u200b all\u200e", Change{Actions: []Action{Mute}, MPC: name(t, "test_mpc_1"), Members: members("all")}},
		{"mute test_mpc_1 all --yes", Change{Actions: []Action{Mute}, MPC: name(t, "test_mpc_1"), Members: members("all"), Confirmed: true}},
		{"mute test_mpc_1 all —yes", Change{Actions: []Action{Mute}, MPC: name(t, "test_mpc_1"), Members: members("all"), Confirmed: true}},
		{"mute test_mpc_1 all –YES", Change{Actions: []Action{Mute}, MPC: name(t, "test_mpc_1"), Members: members("all"), Confirmed: true}},
		{"--yes mute test_mpc_1 all", Change{Actions: []Action{Mute}, MPC: name(t, "test_mpc_1"), Members: members("all"), Confirmed: true}},
		{"mute test_mpc_1 111,222,333", Change{Actions: []Action{Mute}, MPC: name(t, "test_mpc_1"), Members: members("111", "222", "333")}},
		{"mute test_mpc_1 111, 222 ,333", Change{Actions: []Action{Mute}, MPC: name(t, "test_mpc_1"), Members: members("111", "222", "333")}},
		{"mute test_mpc_1 111,111", Change{Actions: []Action{Mute}, MPC: name(t, "test_mpc_1"), Members: members("111")}},
		{"mute uuid:d5c8be43-87d0-4ba6-90a1-011bb6ab0a00 all", Change{Actions: []Action{Mute}, MPC: uuidMPC, Members: members("all")}},
		{"mute UUID:D5C8BE43-87D0-4BA6-90A1-011BB6AB0A00 all", Change{Actions: []Action{Mute}, MPC: uuidMPC, Members: members("all")}},
		{`mute "uuid:x" all`, Change{Actions: []Action{Mute}, MPC: name(t, "uuid:x"), Members: members("all")}},
		{"mute a&amp;b all", Change{Actions: []Action{Mute}, MPC: name(t, "a&b"), Members: members("all")}},
	}
	for _, tt := range tests {
		t.Run(tt.text, func(t *testing.T) {
			got, err := Parse(tt.text)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.text, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("Parse(%q) = %#v, want %#v", tt.text, got, tt.want)
			}
			// The canonical text parses back to the same command.
			again, err := Parse(got.Text())
			if err != nil || !reflect.DeepEqual(again, got) {
				t.Fatalf("Parse(Text()=%q) = %#v, %v; want %#v", got.Text(), again, err, got)
			}
		})
	}
}

func TestParseOther(t *testing.T) {
	tests := []struct {
		text string
		want Command
	}{
		{"", Help{}},
		{"   ", Help{}},
		{"help", Help{}},
		{"HELP", Help{}},
		{"list test_mpc_1", List{MPC: name(t, "test_mpc_1"), Page: 1}},
		{"LIST test_mpc_1 here", List{MPC: name(t, "test_mpc_1"), Here: true, Page: 1}},
		{`list "mpc 1000" --page 3`, List{MPC: name(t, "mpc 1000"), Page: 3}},
		{"list test_mpc_1 here —page=2", List{MPC: name(t, "test_mpc_1"), Here: true, Page: 2}},
		{`list "here"`, List{MPC: name(t, "here"), Page: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.text, func(t *testing.T) {
			got, err := Parse(tt.text)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.text, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("Parse(%q) = %#v, want %#v", tt.text, got, tt.want)
			}
			again, err := Parse(got.Text())
			if err != nil || !reflect.DeepEqual(again, got) {
				t.Fatalf("Parse(Text()=%q) = %#v, %v", got.Text(), again, err)
			}
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		text string
		want string // substring of the problem
	}{
		{"hlod test_mpc_1 all", "Did you mean `hold`?"},
		{"mute,unmute test_mpc_1 all", "contradict"},
		{"hold,unhold test_mpc_1 all", "contradict"},
		{"coach test_mpc_1 all", "coach_mode can be updated only for a specific member_id"},
		{"mute,uncoach test_mpc_1 all", "need a specific member id"},
		{"hold", "which MPC?"},
		{"hold test_mpc_1", "which participant?"},
		{"hold mpc 1000 all", "too many words"},
		{"test_mpc_1 hold all", "the action comes first"},
		{"hold test_mpc_1 bob", "is not a participant"},
		{"hold test_mpc_1 all,101", "can't be combined"},
		{"hold test_mpc_1 1,2,3,4,5,6,7,8,9,10,11", "at most 10"},
		{"hold test_mpc_1 all --force", "unknown option"},
		{`hold "mpc 1000 all`, "quote is not closed"},
		{`hold "" all`, "empty quotes"},
		{`hold "a"b all`, "space after the closing quote"},
		{"hold ../x all", `".."`},
		{"hold a/b all", `'/'`},
		{"hold a%2Fb all", `'%'`},
		{"hold a?b all", `'?'`},
		{"hold a#b all", `'#'`},
		{`hold a\b all`, `'\\'`},
		{"hold <!channel> all", "Slack mention"},
		{"hold <@U024BE7LH> all", "Slack mention"},
		{"hold &lt;!channel&gt; all", "Slack mention"},
		{"hold uuid:1234 all", "not an MPC UUID"},
		{"hold test_mpc_1 ../1", "is not a participant"},
		{"hold test_mpc_1 1?x=1", "is not a participant"},
		{"hold x" + strings.Repeat("y", 200) + " all", "longer than"},
		{"help me", "takes nothing"},
		{"list", "needs the MPC"},
		{"list a b", "takes one MPC"},
		{"list a --page 0", "page number"},
		{"list a --yes", "unknown option"},
		{strings.Repeat("a", MaxTextLength+1), "characters long"},
		{"hold \xff all", "UTF-8"},
		{`hold "a""b" all`, "space after"},
	}
	for _, tt := range tests {
		t.Run(tt.text, func(t *testing.T) {
			got, err := Parse(tt.text)
			if err == nil {
				t.Fatalf("Parse(%q) = %#v, want error containing %q", tt.text, got, tt.want)
			}
			if !IsUsage(err) {
				t.Fatalf("Parse(%q) error %T is not a *UsageError", tt.text, err)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Parse(%q) error = %q, want it to contain %q", tt.text, err, tt.want)
			}
		})
	}
}

func TestChangeInverse(t *testing.T) {
	c := Change{Actions: []Action{Mute, Hold}, MPC: name(t, "m"), Members: members("1")}
	inv := c.Inverse()
	if got := inv.ActionsText(); got != "unmute,unhold" {
		t.Fatalf("Inverse actions = %q", got)
	}
	if got := inv.Inverse().ActionsText(); got != c.ActionsText() {
		t.Fatalf("Inverse twice = %q", got)
	}
	u := c.Update()
	if u.Mute == nil || !*u.Mute || u.Hold == nil || !*u.Hold || u.CoachMode != nil {
		t.Fatalf("Update() = %+v", u)
	}
}

// golden compares got with testdata/<name>, rewriting it with -update.
func golden(t *testing.T, name string, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden file (run with -update to create it): %v", err)
	}
	if got != string(want) {
		t.Fatalf("%s differs from golden file (run with -update to accept):\n--- got ---\n%s\n--- want ---\n%s", name, got, want)
	}
}

func TestHelpGolden(t *testing.T) {
	golden(t, "help.golden", HelpText+"\n")
	golden(t, "usage.golden", Usage+"\n")
}
