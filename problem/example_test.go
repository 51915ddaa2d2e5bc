package problem_test

import (
	"encoding/json"
	"fmt"

	"github.com/hallpass/hallpass/problem"
)

// A refusal as every hallpass server writes it: the code's status and
// title from the vocabulary, and a detail that says what to fix.
func ExampleNew() {
	info, _ := problem.Lookup(problem.TokenExpired)
	b, _ := json.Marshal(problem.New(problem.TokenExpired, info.Status, "", ""))
	fmt.Println(string(b))
	fmt.Println(problem.DPoPChallenge(problem.TokenExpired))
	// Output:
	// {"type":"urn:hallpass:problem:token_expired","title":"Access token expired","status":401,"code":"token_expired","detail":"The access token has expired; refresh it."}
	// DPoP error="token_expired", algs="ES256 EdDSA"
}
