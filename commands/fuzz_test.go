package commands

import (
	"reflect"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

// phoneTyped is a seed corpus of what people really type on phones:
// smart quotes, em/en dashes, non-breaking spaces, emoji, RTL and
// zero-width marks, autocorrected capitals, very long text.
var phoneTyped = []string{
	"hold test_mpc_1 all",
	"Hold test_mpc_1 all",
	"mute,hold test_mpc_1 all",
	"mute, hold test_mpc_1 38291045",
	"mute “mpc 1000” all",
	"mute ‘mpc 1000’ 209",
	"mute „mpc 1000“ all —yes",
	"unhold test_mpc_1 all –yes",
	"mute\u00a0test_mpc_1\u00a0all",
	"mute\u202ftest_mpc_1 all",
	"\u200fmute test_mpc_1 all\u200e",
	"mute test\u200b_mpc_1 all",
	"mute 📞 all",
	"mute test_mpc_1 all 👍",
	"coach test_mpc_1 all",
	"coach test_mpc_1 229",
	"list test_mpc_1 here",
	"list “mpc 1000” --page 2",
	"mute <!channel> all",
	"mute &lt;!channel&gt; all",
	"mute <@U024BE7LH|bob> all",
	"mute ../../Account all",
	"mute a%2Fb all",
	"mute test?x=1 all",
	"mute test#frag all",
	"mute uuid:d5c8be43-87d0-4ba6-90a1-011bb6ab0a00 all",
	"mute test_mpc_1 111,222,333",
	"\u202emute test_mpc_1 all",
	"mute \"unterminated all",
	"mute test_mpc_1 " + strings.Repeat("9", 30),
	strings.Repeat("mute ", 800),
	strings.Repeat("é", 4000),
	"",
	"help",
	// Timed actions, as typed on a phone.
	"hold test_mpc_1 1002 for 2m",
	"Hold test_mpc_1 1002 For 2M",
	"hold test_mpc_1 1002 for 90s —yes",
	"mute,hold test_mpc_1 all --yes for 1m30s",
	"hold test_mpc_1 1002 for 1h",
	"hold test_mpc_1 1002 for 1h1s",
	"hold test_mpc_1 1002 for 0.5h",
	"hold test_mpc_1 1002 for 1.5s",
	"hold test_mpc_1 1002 for 500ms",
	"hold test_mpc_1 1002 for –2m",
	"hold test_mpc_1 1002 for 2",
	"hold test_mpc_1 1002 for",
	"hold test_mpc_1 1002 2m",
	"hold for 1002 for 2m",
	"coach test_mpc_1 229 for 10m",
	// Live calls and timers.
	"calls",
	"calls here",
	"Calls Here",
	"cancel-timer abc123",
	"cancel-timer " + strings.Repeat("x", 33),
	"cancel-timer ABC",
	// Slack's link markup and mentions.
	"hold <http://sales.eu|sales.eu> all",
	"hold <http://sales.eu> 1002 for 2m",
	"hold <https://sales.eu/x> all",
	"hold <mailto:a@b.c|a@b.c> all",
	"hold test_mpc_1 <tel:1002|1002>,<tel:+1003|+1003>",
	"hold <#C024BE7LR|general> all",
	"hold <!subteam^SAZ94GDB8|@team> all",
	"hold <<http://a|b>> all",
	"hold <a<http://q|http:z>> all",
	`hold "<http://sales.eu|sales.eu> east" all`,
	"list <http://sales.eu|sales.eu> here",
}

// checkCommand asserts the invariants every parsed command holds, whatever
// the input: nothing that could alter a Plivo URL, canonical text that
// parses back to the same command, and member ids that are digits.
func checkCommand(t *testing.T, g Grammar, input string, cmd Command) {
	t.Helper()
	check := func(seg string) {
		if strings.ContainsAny(seg, "/?#\\") || strings.Contains(seg, "..") {
			t.Fatalf("Parse(%q): path segment %q could change the URL", input, seg)
		}
	}
	switch c := cmd.(type) {
	case Change:
		check(c.MPC.PathSegment())
		if c.For != 0 && (c.For < MinTimed || c.For%time.Second != 0) {
			t.Fatalf("Parse(%q): timed for %v", input, c.For)
		}
		if c.Timed() != strings.HasSuffix(c.Describe(), " for "+FormatDuration(c.For)) {
			t.Fatalf("Parse(%q): Describe() = %q for %v", input, c.Describe(), c.For)
		}
		if c.Inverse().Timed() || c.WithMembers(c.Members...).Timed() {
			t.Fatalf("Parse(%q): Inverse or WithMembers is timed", input)
		}
		if len(c.Actions) == 0 || len(c.Members) == 0 || len(c.Members) > maxMembers {
			t.Fatalf("Parse(%q): bad change %#v", input, c)
		}
		for _, m := range c.Members {
			if !m.IsAll() && !isAllDigits(string(m)) {
				t.Fatalf("Parse(%q): member %q", input, m)
			}
		}
		if c.All() && c.Coaching() {
			t.Fatalf("Parse(%q): coaching all passed validation", input)
		}
		if err := c.Update().Validate(c.Members[0]); err != nil {
			t.Fatalf("Parse(%q): update invalid: %v", input, err)
		}
	case List:
		check(c.MPC.PathSegment())
	case CancelTimer:
		if !validTimerID(c.ID) {
			t.Fatalf("Parse(%q): timer id %q", input, c.ID)
		}
	case Help, Calls:
	default:
		t.Fatalf("Parse(%q) returned %T", input, cmd)
	}
	again, err := g.Parse(cmd.Text())
	if err != nil || !reflect.DeepEqual(again, cmd) {
		t.Fatalf("Parse(%q) = %#v; its text %q parses to %#v, %v", input, cmd, cmd.Text(), again, err)
	}
}

func FuzzParse(f *testing.F) {
	for _, s := range phoneTyped {
		f.Add(s)
	}
	long := Grammar{TimedMax: 3 * time.Hour}
	f.Fuzz(func(t *testing.T, input string) {
		cmd, err := Parse(input)
		longCmd, longErr := long.Parse(input)
		if err != nil {
			if !isUsage(err) {
				t.Fatalf("Parse(%q) error %T is not a usage error", input, err)
			}
			if !utf8.ValidString(err.Error()) && utf8.ValidString(input) {
				t.Fatalf("Parse(%q) error is not valid UTF-8", input)
			}
			// A longer maximum accepts more, and only timed changes beyond 1h.
			if longErr == nil {
				if c, ok := longCmd.(Change); !ok || c.For <= defaultTimedMax {
					t.Fatalf("Parse(%q) failed (%v) but parses with a 3h maximum to %#v", input, err, longCmd)
				}
				checkCommand(t, long, input, longCmd)
			}
			return
		}
		checkCommand(t, Grammar{}, input, cmd)
		if longErr != nil || !reflect.DeepEqual(longCmd, cmd) {
			t.Fatalf("Parse(%q) = %#v, but with a 3h maximum %#v, %v", input, cmd, longCmd, longErr)
		}
	})
}

func FuzzDecodeButton(f *testing.F) {
	issued := time.Unix(1_700_000_000, 0)
	for _, s := range phoneTyped {
		if cmd, err := Parse(s); err == nil {
			f.Add(EncodeButton(cmd, issued))
		}
		f.Add("v1|1700000000|" + s)
	}
	f.Add("v2|1|hold x all")
	f.Add("v1|-5|hold x all")
	f.Add("v1||hold x all")
	f.Add("v1|99999999999999999999|hold x all")
	f.Add("v1|1700000000|cancel-timer abc123")
	f.Add("v1|1700000000|calls here")
	f.Add("v1|1700000000|hold x 1 for 2h")
	f.Add("v1|1700000000| ")
	f.Add("")
	f.Fuzz(func(t *testing.T, value string) {
		b, err := DecodeButton(value)
		if err != nil {
			if !isUsage(err) {
				t.Fatalf("DecodeButton(%q) error %T is not a usage error", value, err)
			}
			return
		}
		switch b.Command.(type) {
		case Change, List, Calls, CancelTimer:
		default:
			t.Fatalf("DecodeButton(%q) gave %T", value, b.Command)
		}
		checkCommand(t, Grammar{}, value, b.Command)
		if b.Issued.Unix() <= 0 {
			t.Fatalf("DecodeButton(%q): issued %v", value, b.Issued)
		}
		// Re-encoding gives a value that decodes to the same button.
		again, err := DecodeButton(EncodeButton(b.Command, b.Issued))
		if err != nil || !reflect.DeepEqual(again, b) {
			t.Fatalf("re-encoded %q decodes to %#v, %v", value, again, err)
		}
	})
}

func TestButtonRoundTripAndAge(t *testing.T) {
	issued := time.Unix(1_700_000_000, 0)
	c, err := Parse("mute,hold “mpc 1000” 101,102 --yes")
	if err != nil {
		t.Fatal(err)
	}
	v := EncodeButton(c, issued)
	if len(v) > maxButtonValue {
		t.Fatalf("value too long: %d", len(v))
	}
	b, err := DecodeButton(v)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(b.Command, c) || !b.Issued.Equal(issued) {
		t.Fatalf("DecodeButton(%q) = %#v", v, b)
	}
	tests := []struct {
		age   time.Duration
		stale bool
	}{
		{0, false}, {59 * time.Minute, false}, {time.Hour, false}, {61 * time.Minute, true},
		{30 * time.Hour, true}, {-30 * time.Second, false}, {-2 * time.Minute, true},
	}
	for _, tt := range tests {
		ref := b.Stale(issued.Add(tt.age), time.Hour)
		if (ref != nil) != tt.stale {
			t.Errorf("age %v: stale refusal = %+v, want stale=%v", tt.age, ref, tt.stale)
		}
		if ref != nil && (ref.Code != RefusedStaleButton || !strings.Contains(ref.Fix, "/mpc list")) {
			t.Errorf("age %v: refusal %+v lacks the list hint", tt.age, ref)
		}
	}
}

func TestButtonStaleByCommand(t *testing.T) {
	issued := time.Unix(1_700_000_000, 0)
	tests := []struct {
		cmd   Command
		age   time.Duration
		stale bool
		fix   string
	}{
		{CancelTimer{ID: "abc123"}, 5 * time.Hour, false, ""},
		{CancelTimer{ID: "abc123"}, -2 * time.Minute, true, "`/mpc`"},
		{Calls{}, 2 * time.Hour, true, "`/mpc`"},
		{Calls{Here: true}, 30 * time.Minute, false, ""},
		{Change{Actions: []Action{Hold}, MPC: name(t, "m"), Members: members("1"), For: time.Minute}, 2 * time.Hour, true, "`/mpc list m`"},
	}
	for _, tt := range tests {
		b, err := DecodeButton(EncodeButton(tt.cmd, issued))
		if err != nil || !reflect.DeepEqual(b.Command, tt.cmd) {
			t.Fatalf("DecodeButton(EncodeButton(%#v)) = %#v, %v", tt.cmd, b, err)
		}
		ref := b.Stale(issued.Add(tt.age), time.Hour)
		if (ref != nil) != tt.stale || ref != nil && !strings.Contains(ref.Fix, tt.fix) {
			t.Errorf("%s at age %v: stale refusal = %+v, want stale=%v with %s", tt.cmd.Text(), tt.age, ref, tt.stale, tt.fix)
		}
	}
}

func TestDecodeButtonRejects(t *testing.T) {
	for _, v := range []string{
		"", "hold x all", "v2|1700000000|hold x all", "v1|abc|hold x all", "v1|0|hold x all",
		"v1|1700000000|help", "v1|1700000000|", "v1|1700000000|hold ../x all",
		"v1|1700000000|coach x all", "v1|1700000000|" + strings.Repeat("x", maxButtonValue),
		"v1|1700000000| ", "v1|1700000000|?", "v1|1700000000|hold x 1 for 2h", "v1|1700000000|cancel-timer a_b",
	} {
		if b, err := DecodeButton(v); err == nil {
			t.Errorf("DecodeButton(%q) = %#v, want error", v, b)
		}
	}
}
