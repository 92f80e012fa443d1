package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
)

// handledBy reads the replicas' logs and returns, for every envelope with
// an audit record, the replicas (numbered from 1, in the order of paths)
// that wrote one. Each request a replica serves has exactly one audit
// record, so an envelope under two replicas was answered twice.
func handledBy(paths []string) (map[string][]int, error) {
	out := map[string][]int{}
	for i, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			return out, fmt.Errorf("reading bot %d's log: %w", i+1, err)
		}
		err = scanAudit(f, func(envelopeID string) {
			if !slices.Contains(out[envelopeID], i+1) {
				out[envelopeID] = append(out[envelopeID], i+1)
			}
		})
		f.Close()
		if err != nil {
			return out, fmt.Errorf("reading bot %d's log: %w", i+1, err)
		}
	}
	return out, nil
}

// scanAudit calls f with the envelope id of every audit record in a JSON
// log.
func scanAudit(r io.Reader, f func(envelopeID string)) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 4<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if !bytes.Contains(line, []byte(`"msg":"audit"`)) {
			continue
		}
		var rec struct {
			Msg        string `json:"msg"`
			EnvelopeID string `json:"envelope_id"`
		}
		if json.Unmarshal(line, &rec) != nil || rec.Msg != "audit" || rec.EnvelopeID == "" {
			continue
		}
		f(rec.EnvelopeID)
	}
	return sc.Err()
}

// spread summarizes which replicas served a set of envelopes.
type spread struct {
	// PerReplica counts the envelopes each replica served (index 0 is
	// replica 1).
	PerReplica []int
	// Twice counts envelopes served by more than one replica (a
	// redelivery or a retry answered twice).
	Twice int
	// Unserved counts envelopes no replica wrote an audit record for.
	Unserved int
}

// spreadOf counts, for ids, which of n replicas served them.
func spreadOf(handled map[string][]int, ids []string, n int) spread {
	s := spread{PerReplica: make([]int, n)}
	for _, id := range ids {
		rs := handled[id]
		switch {
		case len(rs) == 0:
			s.Unserved++
		case len(rs) > 1:
			s.Twice++
		}
		for _, r := range rs {
			if r >= 1 && r <= n {
				s.PerReplica[r-1]++
			}
		}
	}
	return s
}
