package issuer

// NetsOf exposes netsOf to the external tests.
func NetsOf(ip string) (addr, net, site, wide string) {
	n := netsOf(ip)
	return n.addr, n.net, n.site, n.wide
}

// WithLimitDefaults returns cfg with the network budgets and the reserve
// filled as New fills them.
func (cfg Config) WithLimitDefaults() Config {
	cfg.limitDefaults()
	return cfg
}
