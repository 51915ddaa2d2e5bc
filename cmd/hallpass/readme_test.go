package main

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// readmeBlock returns the first ```sh block after the heading that starts
// with heading.
func readmeBlock(t *testing.T, readme, heading string) string {
	t.Helper()
	i := strings.Index(readme, "\n## "+heading)
	if i < 0 {
		t.Fatalf("README has no heading %q", heading)
	}
	rest := readme[i:]
	start := strings.Index(rest, "```sh\n")
	if start < 0 {
		t.Fatalf("no sh block under %q", heading)
	}
	rest = rest[start+len("```sh\n"):]
	end := strings.Index(rest, "\n```")
	if end < 0 {
		t.Fatalf("unterminated block under %q", heading)
	}
	return rest[:end+1]
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// TestREADMEWalkthroughs pastes the README's walkthroughs into bash, with
// the freshly built binary as bin/hallpass and the server on a free port.
func TestREADMEWalkthroughs(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Fatal("the README walkthrough needs curl")
	}
	raw, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	readme := string(raw)
	work := t.TempDir()
	bin := filepath.Join(work, "bin", "hallpass")
	build := exec.Command("go", "build", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	tests := []struct {
		heading string
		want    []*regexp.Regexp
		check   func(t *testing.T, out []byte)
	}{
		{"60-second walkthrough", []*regexp.Regexp{
			regexp.MustCompile(`"sub": "acc_demo"`),
			regexp.MustCompile(`UNVERIFIED`),
			regexp.MustCompile(`invalid_token: `),
			regexp.MustCompile(`refused, as it should be`),
			regexp.MustCompile(`(?m)^retired\s+k4\.pid\.`),
		}, nil},
		{"Walkthrough: the issuer and a device", []*regexp.Regexp{
			regexp.MustCompile(`"keys":\[\{"kid":"k4\.pid\.`),
			regexp.MustCompile(`"username": "alice\d+"`),
			regexp.MustCompile(`username_taken`),
			regexp.MustCompile(`taken: names are unique`),
			regexp.MustCompile(`"logged_out": true`),
		}, nil},
		{"Walkthrough: a second device, a lost phone, recovery", []*regexp.Regexp{
			regexp.MustCompile(`"name": "phone A"`),
			regexp.MustCompile(`"name": "tablet B"`),
			regexp.MustCompile(`"logged_out": true`),
			regexp.MustCompile(`"recovery_codes_left": 9`),
			regexp.MustCompile(`invalid_recovery_code: `),
			regexp.MustCompile(`used up: each code works once`),
		}, sameAccountThroughout},
	}
	for _, tc := range tests {
		t.Run(tc.heading, func(t *testing.T) {
			script := readmeBlock(t, readme, tc.heading)
			if !strings.Contains(script, "make build\n") {
				t.Fatal("walkthrough no longer starts with make build")
			}
			script = strings.Replace(script, "make build\n", "", 1)
			script = strings.ReplaceAll(script, "127.0.0.1:8080", "127.0.0.1:"+strconv.Itoa(freePort(t)))
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			cmd := exec.CommandContext(ctx, "bash", "-e", "-c", script)
			cmd.Dir = work
			cmd.WaitDelay = 5 * time.Second
			// Own process group: a server the script left running (on
			// failure or timeout) is killed with it.
			cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
			cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
			out, err := cmd.CombinedOutput()
			if cmd.Process != nil {
				syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			}
			if err != nil {
				t.Fatalf("walkthrough failed: %v\n%s", err, out)
			}
			for _, re := range tc.want {
				if !re.Match(out) {
					t.Errorf("output lacks %s\n%s", re, out)
				}
			}
			if tc.check != nil {
				tc.check(t, out)
			}
		})
	}
}

// sameAccountThroughout checks the recovery walkthrough: signup on phone
// A, link on tablet B, B's logout, recovery on phone C and C's me all name
// one account id, and every username printed is the one signed up with.
func sameAccountThroughout(t *testing.T, out []byte) {
	t.Helper()
	for _, tc := range []struct {
		field string
		min   int
	}{{"account_id", 5}, {"username", 4}} {
		re := regexp.MustCompile(`"` + tc.field + `": "([^"]+)"`)
		all := re.FindAllSubmatch(out, -1)
		if len(all) < tc.min {
			t.Errorf("%d %s values printed, want at least %d (signup, link, logout, recover, me)\n%s", len(all), tc.field, tc.min, out)
			continue
		}
		for _, m := range all[1:] {
			if string(m[1]) != string(all[0][1]) {
				t.Errorf("%s %q after %q: the account changed\n%s", tc.field, m[1], all[0][1], out)
			}
		}
	}
}
