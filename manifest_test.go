package mpcbot

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/dlclark/regexp2/v2"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"go.yaml.in/yaml/v3"
)

// The schema files are Slack's published app-manifest JSON Schema
// (github.com/slackapi/manifest-schema, see testdata/slack/README.md). The
// top-level file refers to the versioned ones by URL; they are served from
// testdata instead of the network.
const schemaBase = "https://raw.githubusercontent.com/slackapi/manifest-schema/v0.5.0/schemas/"

func compileManifestSchema(t *testing.T) *jsonschema.Schema {
	t.Helper()
	c := jsonschema.NewCompiler()
	// Slack's schema uses ECMAScript lookaheads that Go's regexp lacks.
	c.UseRegexpEngine(ecmaRegexp)
	for url, file := range map[string]string{
		"https://github.com/slackapi/manifest-schema/blob/main/manifest.schema.json": "manifest.schema.json",
		schemaBase + "manifest.schema.1.0.0.json":                                    "manifest.schema.1.0.0.json",
		schemaBase + "manifest.schema.2.0.0.json":                                    "manifest.schema.2.0.0.json",
	} {
		raw, err := os.ReadFile(filepath.Join("testdata", "slack", file))
		if err != nil {
			t.Fatal(err)
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
		if err != nil {
			t.Fatalf("%s: %v", file, err)
		}
		if err := c.AddResource(url, doc); err != nil {
			t.Fatalf("%s: %v", file, err)
		}
	}
	s, err := c.Compile("https://github.com/slackapi/manifest-schema/blob/main/manifest.schema.json")
	if err != nil {
		t.Fatalf("compile the manifest schema: %v", err)
	}
	return s
}

type ecmaPattern struct{ re *regexp2.Regexp }

func (p ecmaPattern) MatchString(s string) bool {
	ok, err := p.re.MatchString(s)
	return err == nil && ok
}

func (p ecmaPattern) String() string { return p.re.String() }

func ecmaRegexp(s string) (jsonschema.Regexp, error) {
	re, err := regexp2.Compile(s, regexp2.ECMAScript)
	if err != nil {
		return nil, err
	}
	return ecmaPattern{re}, nil
}

// yamlToJSONValue converts a YAML document to the JSON value model the
// validator expects (via JSON, so numbers and maps have JSON types).
func yamlToJSONValue(t *testing.T, y []byte) any {
	t.Helper()
	var v any
	if err := yaml.Unmarshal(y, &v); err != nil {
		t.Fatalf("manifest.yaml is not valid YAML: %v", err)
	}
	j, err := json.Marshal(v)
	if err != nil {
		t.Fatalf("manifest.yaml does not map to JSON: %v", err)
	}
	out, err := jsonschema.UnmarshalJSON(bytes.NewReader(j))
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestManifestMatchesSlackSchema(t *testing.T) {
	schema := compileManifestSchema(t)
	if err := schema.Validate(yamlToJSONValue(t, Manifest)); err != nil {
		t.Fatalf("manifest.yaml is not a valid Slack app manifest:\n%v", err)
	}
}

// The schema really rejects broken manifests, so the test above can fail.
func TestManifestSchemaRejects(t *testing.T) {
	schema := compileManifestSchema(t)
	for name, edit := range map[string]func(string) string{
		"command without slash": func(s string) string { return strings.Replace(s, "command: /mpc", "command: mpc", 1) },
		"unknown setting":       func(s string) string { return strings.Replace(s, "socket_mode_enabled: true", "socket_mode: true", 1) },
		"name too long": func(s string) string {
			return strings.Replace(s, "name: mpcbot", "name: "+strings.Repeat("m", 40), 1)
		},
		// (The schema's colour pattern is under a non-standard "regex" key,
		// so only its length limit is enforced.)
		"colour too long": func(s string) string { return strings.Replace(s, `"#1d3557"`, `"#1d3557ff"`, 1) },
		"long description too short": func(s string) string {
			i := strings.Index(s, "long_description:")
			j := strings.Index(s, "features:")
			return s[:i] + "long_description: too short\n" + s[j:]
		},
	} {
		broken := edit(string(Manifest))
		if broken == string(Manifest) {
			t.Fatalf("%s: the edit did not apply", name)
		}
		if err := schema.Validate(yamlToJSONValue(t, []byte(broken))); err == nil {
			t.Errorf("%s: the schema accepted a broken manifest", name)
		}
	}
}

// What the bot relies on is switched on: Socket Mode, interactivity for
// buttons, the /mpc command, and the scopes it calls methods with.
func TestManifestHasWhatTheBotNeeds(t *testing.T) {
	var m struct {
		Features struct {
			AppHome struct {
				HomeTab     bool `yaml:"home_tab_enabled"`
				MessagesTab bool `yaml:"messages_tab_enabled"`
			} `yaml:"app_home"`
			SlashCommands []struct {
				Command      string `yaml:"command"`
				UsageHint    string `yaml:"usage_hint"`
				ShouldEscape bool   `yaml:"should_escape"`
			} `yaml:"slash_commands"`
		} `yaml:"features"`
		OAuth struct {
			Scopes struct {
				Bot []string `yaml:"bot"`
			} `yaml:"scopes"`
		} `yaml:"oauth_config"`
		Settings struct {
			Interactivity struct {
				IsEnabled bool `yaml:"is_enabled"`
			} `yaml:"interactivity"`
			SocketMode bool `yaml:"socket_mode_enabled"`
			Events     struct {
				BotEvents []string `yaml:"bot_events"`
			} `yaml:"event_subscriptions"`
		} `yaml:"settings"`
	}
	if err := yaml.Unmarshal(Manifest, &m); err != nil {
		t.Fatal(err)
	}
	if !m.Settings.SocketMode || !m.Settings.Interactivity.IsEnabled {
		t.Fatalf("socket mode %v, interactivity %v", m.Settings.SocketMode, m.Settings.Interactivity.IsEnabled)
	}
	if len(m.Features.SlashCommands) != 1 || m.Features.SlashCommands[0].Command != "/mpc" || m.Features.SlashCommands[0].UsageHint == "" {
		t.Fatalf("slash commands = %+v", m.Features.SlashCommands)
	}
	// The Home tab lists the live calls when opened (app_home_opened over
	// Socket Mode); changes made there are recorded in the Messages tab.
	if !m.Features.AppHome.HomeTab || !m.Features.AppHome.MessagesTab {
		t.Errorf("app_home = %+v: the Home and Messages tabs must be on", m.Features.AppHome)
	}
	if !slices.Contains(m.Settings.Events.BotEvents, "app_home_opened") {
		t.Errorf("bot events %v: app_home_opened missing", m.Settings.Events.BotEvents)
	}
	scopes := strings.Join(m.OAuth.Scopes.Bot, " ")
	for _, need := range []string{"commands", "chat:write", "usergroups:read"} {
		if !strings.Contains(" "+scopes+" ", " "+need+" ") {
			t.Errorf("bot scope %s missing (have %s)", need, scopes)
		}
	}
}
