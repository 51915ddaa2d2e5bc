package client

import "io"

// WithRandom replaces the random source of refresh retry ids (tests only).
func WithRandom(r io.Reader) Option { return func(o *options) { o.rand = r } }
