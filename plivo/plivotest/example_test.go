package plivotest_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/mpcbot/mpcbot/plivo/plivotest"
)

// Start a simulator with the sample MPC and mute its customer (member 101)
// with a plain net/http request, as Plivo's Update Participant API expects.
func ExampleNewServer() {
	s := plivotest.NewServer(plivotest.WithSampleMPC())
	defer s.Close()

	url := s.URL + "/v1/Account/" + s.AuthID + "/MultiPartyCall/name_test_mpc_1/Participant/101/"
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(`{"mute": true}`))
	if err != nil {
		fmt.Println(err)
		return
	}
	req.SetBasicAuth(s.AuthID, s.AuthToken)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		fmt.Println(err)
		return
	}
	defer resp.Body.Close()

	var result struct {
		APIID string `json:"api_id"`
		Mute  string `json:"mute"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&result); err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(resp.StatusCode, result.Mute)

	st, _ := s.Participant("test_mpc_1", "101")
	fmt.Printf("member %s (%s): mute=%v\n", st.MemberID, st.Role, st.Mute)
	// Output:
	// 200 MPC: test_mpc_1 mute/unmute member(s) succeeded
	// member 101 (customer): mute=true
}
