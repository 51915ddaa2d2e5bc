package issuer_test

import (
	"bufio"
	"bytes"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/hallpass/hallpass/docs"
	"github.com/hallpass/hallpass/problem"
)

// openAPIOperations reads "METHOD path" for every operation under the
// document's top-level paths: key, by indentation (paths at two spaces,
// methods at four), which is how docs/openapi.yaml is written.
func openAPIOperations(t *testing.T, doc []byte) []string {
	t.Helper()
	var ops []string
	in, path := false, ""
	sc := bufio.NewScanner(bytes.NewReader(doc))
	for sc.Scan() {
		line := sc.Text()
		if strings.TrimSpace(line) == "" || strings.HasPrefix(strings.TrimSpace(line), "#") {
			continue
		}
		indent := len(line) - len(strings.TrimLeft(line, " "))
		key, _, isKey := strings.Cut(strings.TrimSpace(line), ":")
		switch {
		case indent == 0:
			in = line == "paths:"
		case !in || !isKey:
		case indent == 2:
			path = strings.Trim(key, `"'`)
			if !strings.HasPrefix(path, "/") {
				t.Fatalf("path %q does not start with /", path)
			}
		case indent == 4:
			switch key {
			case "get", "put", "post", "delete", "options", "head", "patch", "trace":
				ops = append(ops, strings.ToUpper(key)+" "+path)
			case "parameters", "summary", "description", "servers":
			default:
				t.Fatalf("unexpected key %q under %s", key, path)
			}
		}
	}
	sort.Strings(ops)
	return ops
}

// TestOpenAPIMatchesRoutes fails when a route is missing from
// docs/openapi.yaml or the document describes a route the server lacks.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	e := newEnv(t, &boltBackend{})
	checkRoutesMatch(t, e.srv.Routes(), docs.OpenAPI, "docs/openapi.yaml")
}

// TestOpenAPIAdminMatchesRoutes: the same for the admin API and
// docs/openapi-admin.yaml; and no admin route is on the public handler.
func TestOpenAPIAdminMatchesRoutes(t *testing.T) {
	e := newEnv(t, &boltBackend{})
	checkRoutesMatch(t, e.srv.AdminRoutes(), docs.OpenAPIAdmin, "docs/openapi-admin.yaml")
	for _, r := range e.srv.Routes() {
		if strings.HasPrefix(r[1], "/v1/admin") {
			t.Errorf("admin route %s %s on the public handler", r[0], r[1])
		}
	}
}

// echoPathParam matches Echo's ":name" path parameters.
var echoPathParam = regexp.MustCompile(`:([A-Za-z_]+)`)

func checkRoutesMatch(t *testing.T, serverRoutes [][2]string, document []byte, name string) {
	t.Helper()
	var routes []string
	for _, r := range serverRoutes {
		routes = append(routes, r[0]+" "+echoPathParam.ReplaceAllString(r[1], "{$1}"))
	}
	sort.Strings(routes)
	doc := openAPIOperations(t, document)
	if len(doc) == 0 {
		t.Fatal("no operations found in the document")
	}
	inDoc := map[string]bool{}
	for _, o := range doc {
		inDoc[o] = true
	}
	inServer := map[string]bool{}
	for _, r := range routes {
		inServer[r] = true
		if !inDoc[r] {
			t.Errorf("route %s is not in %s", r, name)
		}
	}
	for _, o := range doc {
		if !inServer[o] {
			t.Errorf("%s describes %s, which the server does not serve", name, o)
		}
	}
	if !bytes.HasPrefix(document, []byte("openapi: 3.1")) {
		t.Error("not an OpenAPI 3.1 document")
	}
}

// TestOpenAPIErrorCodes: every stable code the server can send is listed in
// the Problem schema.
func TestOpenAPIErrorCodes(t *testing.T) {
	for _, code := range []string{
		"invalid_request", "invalid_token", "token_expired", "token_revoked", "invalid_dpop_proof",
		"use_dpop_nonce", "invalid_grant", "username_taken", "username_invalid", "rate_limited",
		"unsupported_grant_type", "request_too_large", "unsupported_media_type", "not_found",
		"method_not_allowed", "unavailable", "internal_error",
	} {
		if !bytes.Contains(docs.OpenAPI, []byte("            - "+code+"\n")) {
			t.Errorf("code %s is not in the Problem schema", code)
		}
	}
}

// problemCodes reads the enum of Problem.code in an OpenAPI document (the
// list under "code:" ... "enum:" of the Problem schema).
func problemCodes(t *testing.T, doc []byte) []string {
	t.Helper()
	var codes []string
	lines := strings.Split(string(doc), "\n")
	for i := 0; i < len(lines); i++ {
		if strings.TrimSpace(lines[i]) != "code:" || i+2 >= len(lines) || strings.TrimSpace(lines[i+2]) != "enum:" {
			continue
		}
		for j := i + 3; j < len(lines) && strings.HasPrefix(strings.TrimSpace(lines[j]), "- "); j++ {
			codes = append(codes, strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(lines[j]), "- ")))
		}
	}
	sort.Strings(codes)
	return codes
}

// TestOpenAPIListsEveryCode: docs/openapi.yaml lists exactly the public
// codes of package problem, and docs/openapi-admin.yaml names every
// admin-only code.
func TestOpenAPIListsEveryCode(t *testing.T) {
	var public []string
	for _, c := range problem.Codes() {
		info, _ := problem.Lookup(c)
		switch info.Scope {
		case problem.Public:
			public = append(public, c)
		case problem.Admin:
			if !bytes.Contains(docs.OpenAPIAdmin, []byte("`"+c+"`")) {
				t.Errorf("docs/openapi-admin.yaml does not name the admin code %s", c)
			}
		}
	}
	got := problemCodes(t, docs.OpenAPI)
	if strings.Join(got, " ") != strings.Join(public, " ") {
		t.Fatalf("docs/openapi.yaml Problem.code enum\n got %v\nwant %v (package problem)", got, public)
	}
}
