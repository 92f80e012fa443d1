package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"reflect"
	"strconv"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// deployManifest is the Kubernetes manifest shipped in deploy/.
const deployManifest = "../../deploy/kubernetes.yaml"

// k8sObject is the part of a Kubernetes object the checks read.
type k8sObject struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Spec       struct {
		Replicas     *int `yaml:"replicas"`
		MinAvailable any  `yaml:"minAvailable"`
		Strategy     struct {
			RollingUpdate struct {
				MaxSurge       any `yaml:"maxSurge"`
				MaxUnavailable any `yaml:"maxUnavailable"`
			} `yaml:"rollingUpdate"`
		} `yaml:"strategy"`
		Template struct {
			Spec struct {
				TerminationGracePeriodSeconds *int           `yaml:"terminationGracePeriodSeconds"`
				Containers                    []k8sContainer `yaml:"containers"`
			} `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

type k8sContainer struct {
	Name  string   `yaml:"name"`
	Image string   `yaml:"image"`
	Args  []string `yaml:"args"`
	Ports []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	} `yaml:"ports"`
	Env []struct {
		Name      string  `yaml:"name"`
		Value     *string `yaml:"value"`
		ValueFrom *struct {
			SecretKeyRef *struct {
				Name string `yaml:"name"`
				Key  string `yaml:"key"`
			} `yaml:"secretKeyRef"`
		} `yaml:"valueFrom"`
	} `yaml:"env"`
	LivenessProbe  *k8sProbe `yaml:"livenessProbe"`
	ReadinessProbe *k8sProbe `yaml:"readinessProbe"`
	Resources      struct {
		Requests map[string]string `yaml:"requests"`
		Limits   map[string]string `yaml:"limits"`
	} `yaml:"resources"`
}

type k8sProbe struct {
	HTTPGet *struct {
		Path string `yaml:"path"`
		Port any    `yaml:"port"` // a number or a port name
	} `yaml:"httpGet"`
}

// readManifest decodes every document of the manifest.
func readManifest(t *testing.T) []k8sObject {
	t.Helper()
	raw, err := os.ReadFile(deployManifest)
	if err != nil {
		t.Fatal(err)
	}
	var objs []k8sObject
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	for {
		var o k8sObject
		err := dec.Decode(&o)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v", deployManifest, err)
		}
		objs = append(objs, o)
	}
	return objs
}

// configVariables returns the variables the bot reads (Config's env tags)
// and their defaults.
func configVariables() map[string]string {
	vars := map[string]string{}
	t := reflect.TypeOf(Config{})
	for i := range t.NumField() {
		if name := t.Field(i).Tag.Get("env"); name != "" {
			vars[name] = t.Field(i).Tag.Get("envDefault")
		}
	}
	return vars
}

// The Deployment in deploy/ sets only variables the bot reads, with values
// the bot accepts, takes every secret from a Secret, runs two replicas
// sharing Redis within Slack's 10 connections per app (during a rollout
// too), gives SIGTERM's drain its time, sets resources, and probes the real
// /healthz and /readyz on the port the bot listens on.
func TestDeployManifest(t *testing.T) {
	t.Parallel()
	var dep *k8sObject
	kinds := map[string]int{}
	for _, o := range readManifest(t) {
		kinds[o.Kind]++
		if o.Kind == "Deployment" {
			dep = &o
		}
	}
	if dep == nil || kinds["Deployment"] != 1 {
		t.Fatalf("want one Deployment in %s, got kinds %v", deployManifest, kinds)
	}
	if kinds["PodDisruptionBudget"] != 1 {
		t.Errorf("want a PodDisruptionBudget (one pod serving during drains), got kinds %v", kinds)
	}
	if dep.Spec.Replicas == nil || *dep.Spec.Replicas != 2 {
		t.Errorf("replicas = %v, want 2", dep.Spec.Replicas)
	}
	cs := dep.Spec.Template.Spec.Containers
	if len(cs) != 1 {
		t.Fatalf("%d containers, want 1", len(cs))
	}
	c := cs[0]
	if len(c.Args) != 1 || c.Args[0] != "run" {
		t.Errorf("args %q, want [run]", c.Args)
	}

	// Every variable is one the bot reads, set once; secrets from the
	// Secret, never literal.
	known := configVariables()
	env := map[string]string{} // what the pod's environment would hold
	secrets := map[string]bool{}
	for _, e := range c.Env {
		if _, ok := known[e.Name]; !ok {
			t.Errorf("env %s is not a variable mpcbot reads (Config's env tags)", e.Name)
		}
		if _, dup := env[e.Name]; dup {
			t.Errorf("env %s is set twice", e.Name)
		}
		switch {
		case e.Value != nil && e.ValueFrom == nil:
			env[e.Name] = *e.Value
		case e.Value == nil && e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil:
			ref := e.ValueFrom.SecretKeyRef
			if ref.Name != "mpcbot" || ref.Key == "" {
				t.Errorf("env %s from secret %q key %q, want a key of the Secret mpcbot", e.Name, ref.Name, ref.Key)
			}
			secrets[e.Name] = true
			env[e.Name] = ""
		default:
			t.Errorf("env %s: want a value or a secretKeyRef", e.Name)
		}
	}
	for _, name := range []string{"SLACK_APP_TOKEN", "SLACK_BOT_TOKEN", "PLIVO_AUTH_ID", "PLIVO_AUTH_TOKEN", "REDIS_URL"} {
		if !secrets[name] {
			t.Errorf("%s must come from the Secret (it is a credential, or holds the Redis password)", name)
		}
	}
	// The literal values must pass the bot's own configuration checks
	// (with stand-ins for the secrets).
	stand := map[string]string{
		"SLACK_APP_TOKEN": "xapp-1-A1-1-x", "SLACK_BOT_TOKEN": "xoxb-1-x", "PLIVO_AUTH_ID": "MA00000000000000000",
		"PLIVO_AUTH_TOKEN": "token", "REDIS_URL": "redis://:password@redis:6379/0",
	}
	for k := range secrets {
		env[k] = stand[k]
	}
	cfg, err := loadConfig(env, needSlack|needPlivo)
	if err != nil {
		t.Fatalf("the manifest's environment does not pass mpcbot's configuration:\n%v", err)
	}

	// Slack allows 10 Socket Mode connections per app, all pods together,
	// during a rolling update too.
	surge := 0
	if n, ok := dep.Spec.Strategy.RollingUpdate.MaxSurge.(int); ok {
		surge = n
	} else {
		t.Errorf("maxSurge %v: want a whole number of pods", dep.Spec.Strategy.RollingUpdate.MaxSurge)
	}
	if pods := *dep.Spec.Replicas + surge; pods*cfg.SlackConnections > 10 {
		t.Errorf("%d pods × SLACK_CONNECTIONS %d = %d connections during a rollout, above Slack's 10 per app", pods, cfg.SlackConnections, pods*cfg.SlackConnections)
	}
	if dep.Spec.Strategy.RollingUpdate.MaxUnavailable != 0 {
		t.Errorf("maxUnavailable %v, want 0: a new pod is ready before an old one goes", dep.Spec.Strategy.RollingUpdate.MaxUnavailable)
	}

	// SIGTERM: the bot drains for SHUTDOWN_GRACE, then takes up to its
	// shutdown margin (5 s, bot/bot.go) to tell users and close.
	const botShutdownMargin = 5 * time.Second
	grace := 30 * time.Second // Kubernetes's default
	if s := dep.Spec.Template.Spec.TerminationGracePeriodSeconds; s != nil {
		grace = time.Duration(*s) * time.Second
	}
	if grace < cfg.ShutdownGrace+botShutdownMargin {
		t.Errorf("terminationGracePeriodSeconds %v, want at least SHUTDOWN_GRACE %v + %v", grace, cfg.ShutdownGrace, botShutdownMargin)
	}
	for _, r := range []string{"cpu", "memory"} {
		if c.Resources.Requests[r] == "" {
			t.Errorf("no %s request", r)
		}
	}
	if c.Resources.Limits["memory"] == "" {
		t.Error("no memory limit")
	}

	// The probes: the port the bot listens on (HTTP_ADDR), the paths it
	// serves (asked of a running bot).
	_, portText, err := net.SplitHostPort(cfg.HTTPAddr)
	if err != nil {
		t.Fatalf("HTTP_ADDR %q: %v", cfg.HTTPAddr, err)
	}
	listen, _ := strconv.Atoi(portText)
	h := startBot(t)
	for _, p := range []struct {
		name  string
		probe *k8sProbe
		want  string
	}{{"liveness", c.LivenessProbe, "/healthz"}, {"readiness", c.ReadinessProbe, "/readyz"}} {
		if p.probe == nil || p.probe.HTTPGet == nil {
			t.Errorf("no %s httpGet probe", p.name)
			continue
		}
		get := p.probe.HTTPGet
		if get.Path != p.want {
			t.Errorf("%s probe path %q, want %q", p.name, get.Path, p.want)
		}
		if port := c.resolvePort(get.Port); port != listen {
			t.Errorf("%s probe port %v (= %d), want HTTP_ADDR's %d", p.name, get.Port, port, listen)
		}
		if code, body := h.get(get.Path); code != http.StatusOK {
			t.Errorf("%s probe: GET %s on a running bot = %d %q, want 200", p.name, get.Path, code, body)
		}
	}
}

// resolvePort returns the number of a probe's port (a number or the name
// of one of the container's ports), or -1.
func (c k8sContainer) resolvePort(port any) int {
	switch p := port.(type) {
	case int:
		return p
	case string:
		for _, cp := range c.Ports {
			if cp.Name == p {
				return cp.ContainerPort
			}
		}
	}
	return -1
}

// The manifest's header documents the Secret's keys: every key the
// Deployment reads is in its kubectl example.
func TestDeployManifestSecretExample(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile(deployManifest)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range readManifest(t) {
		for _, c := range o.Spec.Template.Spec.Containers {
			for _, e := range c.Env {
				if e.ValueFrom == nil || e.ValueFrom.SecretKeyRef == nil {
					continue
				}
				if want := fmt.Sprintf("--from-literal=%s=", e.ValueFrom.SecretKeyRef.Key); !bytes.Contains(raw, []byte(want)) {
					t.Errorf("the header's kubectl example lacks %s (for %s)", want, e.Name)
				}
			}
		}
	}
}
