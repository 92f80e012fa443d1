package plivotest_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"testing"

	"github.com/mpcbot/mpcbot/plivo/plivotest"
)

// BenchmarkUpdateParticipant measures Update Participant round trips over
// real HTTP (keep-alive connections, basic auth, JSON body), so load tests
// can check that the simulator is not their bottleneck. The account limit
// is disabled and the log bounded, as a load test would configure it.
func BenchmarkUpdateParticipant(b *testing.B) {
	s := plivotest.NewServer(plivotest.WithSampleMPC(), plivotest.WithAccountLimit(0, 0), plivotest.WithLogLimit(10000))
	defer s.Close()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	defer client.CloseIdleConnections()
	url := s.URL + "/v1/Account/" + s.AuthID + "/MultiPartyCall/name_" + plivotest.SampleMPCName + "/Participant/" + agent + "/"
	body := []byte(`{"mute":true,"hold":false}`)
	update := func() error {
		req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
		if err != nil {
			return err
		}
		req.SetBasicAuth(s.AuthID, s.AuthToken)
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if _, err := io.Copy(io.Discard, resp.Body); err != nil {
			return err
		}
		if resp.StatusCode != http.StatusOK {
			return &statusError{resp.StatusCode}
		}
		return nil
	}

	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			if err := update(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.SetParallelism(4)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := update(); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
}

type statusError struct{ status int }

func (e *statusError) Error() string { return fmt.Sprintf("unexpected status %d", e.status) }
