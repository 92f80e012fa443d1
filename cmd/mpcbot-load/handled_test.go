package main

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestScanAudit(t *testing.T) {
	t.Parallel()
	log := strings.Join([]string{
		`{"time":"t","level":"INFO","msg":"audit","status":"ok","envelope_id":"e1"}`,
		`{"time":"t","level":"INFO","msg":"ignored an envelope another connection or replica took","envelope_id":"e2"}`,
		`{"time":"t","level":"WARN","msg":"audit","status":"failed","envelope_id":"e3"}`,
		`{"time":"t","level":"INFO","msg":"audit","status":"ok"}`,
		`not json, "msg":"audit"`,
		`{"time":"t","level":"INFO","msg":"auditing is fun","note":"\"msg\":\"audit\"","envelope_id":"e4"}`,
	}, "\n")
	var got []string
	if err := scanAudit(strings.NewReader(log), func(id string) { got = append(got, id) }); err != nil {
		t.Fatal(err)
	}
	if want := []string{"e1", "e3"}; !reflect.DeepEqual(got, want) {
		t.Errorf("audit records for %v, want %v", got, want)
	}
}

func TestHandledByAndSpread(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	logs := []string{
		`{"msg":"audit","envelope_id":"a"}` + "\n" + `{"msg":"audit","envelope_id":"b"}` + "\n" + `{"msg":"audit","envelope_id":"a"}`,
		`{"msg":"audit","envelope_id":"b"}` + "\n" + `{"msg":"audit","envelope_id":"c"}`,
		``,
	}
	var paths []string
	for i, l := range logs {
		p := filepath.Join(dir, "bot"+string(rune('1'+i))+".log")
		if err := os.WriteFile(p, []byte(l), 0o644); err != nil {
			t.Fatal(err)
		}
		paths = append(paths, p)
	}
	handled, err := handledBy(paths)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]int{"a": {1}, "b": {1, 2}, "c": {2}}
	if !reflect.DeepEqual(handled, want) {
		t.Errorf("handledBy = %v, want %v", handled, want)
	}
	s := spreadOf(handled, []string{"a", "b", "c", "d"}, 3)
	if want := (spread{PerReplica: []int{2, 2, 0}, Twice: 1, Unserved: 1}); !reflect.DeepEqual(s, want) {
		t.Errorf("spreadOf = %+v, want %+v", s, want)
	}
	if _, err := handledBy([]string{filepath.Join(dir, "missing.log")}); err == nil {
		t.Error("handledBy of a missing log: no error")
	}
}
