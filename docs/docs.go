// Package docs holds hallpass's user documentation and its OpenAPI 3.1
// description, embedded so that the issuer serves the document it was built
// with (GET /openapi.yaml) and a test can check it against the router.
package docs

import _ "embed"

// OpenAPI is docs/openapi.yaml: the OpenAPI 3.1 description of every route
// of `hallpass serve`. Treat it as read-only.
//
//go:embed openapi.yaml
var OpenAPI []byte

// OpenAPIAdmin is docs/openapi-admin.yaml: the admin API of `hallpass
// serve` (its own listener, --admin-listen). Treat it as read-only.
//
//go:embed openapi-admin.yaml
var OpenAPIAdmin []byte
