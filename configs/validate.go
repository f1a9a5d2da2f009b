package configs

import (
	"fmt"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
)

// RouteClasses are the mosparo route classes pools may be keyed by (DESIGN.md).
var RouteClasses = []string{"frontend", "api", "resources", "static", "health", "cron", "setup", "admin"}

// Policies are the valid balancing.policy values.
var Policies = []Policy{PolicyRoundRobin, PolicyLeastConn, PolicyWeighted, PolicyClientIPHash}

func (c *Config) defaults() {
	if len(c.Listen) == 0 {
		c.Listen = []Listener{{Address: ":80"}}
	}
	for i := range c.Nodes {
		setInt(&c.Nodes[i].Weight, DefaultNodeWeight)
	}
	for i := range c.Listen {
		l := &c.Listen[i]
		if l.ProxyProtocol != nil {
			setDuration(&l.ProxyProtocol.Timeout, "5s")
		}
		if l.TLS != nil && l.TLS.ACME != nil {
			l.TLS.ACME.defaults()
		}
		l.http2Defaults()
	}
	c.ACME.defaults()
	if c.Balancing.Policy == "" {
		c.Balancing.Policy = PolicyLeastConn
	}
	if c.Balancing.Retries == nil {
		two := 2
		c.Balancing.Retries = &two
	}
	setDuration(&c.Timeouts.Connect, "1s")
	setDuration(&c.Timeouts.Request, "30s")
	setDuration(&c.Timeouts.Idle, "90s")
	setDuration(&c.Timeouts.ClientRead, "30s")
	setDuration(&c.Timeouts.UpstreamIdle, "4s")
	if c.Timeouts.Queue == nil {
		q := Duration(5 * time.Second)
		c.Timeouts.Queue = &q
	}
	setInt(&c.Limits.MaxBodyBytes, 8<<20)
	if _, ok := c.Limits.BodyBytes["frontend"]; !ok {
		if c.Limits.BodyBytes == nil {
			c.Limits.BodyBytes = map[string]int{}
		}
		c.Limits.BodyBytes["frontend"] = 1 << 20
	}
	setInt(&c.Limits.MaxHeaderBytes, 16<<10)
	setInt(&c.Limits.MaxConnsPerNode, 1024)
	setInt(&c.Limits.MaxConns, 10000)
	setInt(&c.Limits.MaxConnsPerIP, min(256, c.Limits.MaxConns))
	if c.Admin.Listen == "" {
		c.Admin.Listen = "127.0.0.1:9090"
	}
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
	if c.Log.Format == "" {
		c.Log.Format = LogJSON
	}
	if c.Log.AccessLog == nil {
		t := true
		c.Log.AccessLog = &t
	}
	setDuration(&c.Shutdown.Grace, "10s")
	c.Health.defaults()
	c.Discovery.defaults()
	c.Compression.defaults()
	c.CSSCache.defaults()
	c.VRRP.defaults()
	c.Cron.defaults()
	c.RateLimits.defaults()
}

func (c *Config) validate(v *validator) {
	c.validateListen(v)
	validCIDRs(v, "trusted_proxies", c.TrustedProxies)
	validStripNames(v, "strip_client_ip_headers", c.StripClientIPHeaders)
	c.validateNodes(v)
	c.validateBalancing(v)
	positive(v, "timeouts.connect", c.Timeouts.Connect)
	positive(v, "timeouts.request", c.Timeouts.Request)
	positive(v, "timeouts.idle", c.Timeouts.Idle)
	positive(v, "timeouts.client_read", c.Timeouts.ClientRead)
	positive(v, "timeouts.upstream_idle", c.Timeouts.UpstreamIdle)
	if q := c.Timeouts.Queue.D(); q < 0 || q > time.Hour {
		v.Errorf("timeouts.queue", "must be 0 (no waiting) up to 1h, got %s", q)
	}
	if c.Limits.MaxBodyBytes < 1024 || c.Limits.MaxBodyBytes > 1<<30 {
		v.Errorf("limits.max_body_bytes", "must be 1024..1073741824, got %d", c.Limits.MaxBodyBytes)
	}
	for class, n := range c.Limits.BodyBytes {
		p := "limits.body_bytes." + class
		if !contains(RouteClasses, class) {
			v.Errorf(p, "unknown route class %q; valid: %s", class, strings.Join(RouteClasses, ", "))
		} else if n < 1024 || n > 1<<30 {
			v.Errorf(p, "must be 1024..1073741824, got %d", n)
		}
	}
	if c.Limits.MaxHeaderBytes < 1024 || c.Limits.MaxHeaderBytes > 1<<20 {
		v.Errorf("limits.max_header_bytes", "must be 1024..1048576, got %d", c.Limits.MaxHeaderBytes)
	}
	if n := c.Limits.MaxConns; n < 1 || n > 1000000 {
		v.Errorf("limits.max_conns", "must be 1..1000000, got %d", n)
	}
	if n := c.Limits.MaxConnsPerIP; n < 1 || n > c.Limits.MaxConns {
		v.Errorf("limits.max_conns_per_ip", "must be 1..limits.max_conns (%d), got %d", c.Limits.MaxConns, n)
	}
	if c.Limits.MaxConnsPerNode < 1 {
		v.Errorf("limits.max_conns_per_node", "must be at least 1, got %d", c.Limits.MaxConnsPerNode)
	}
	c.RateLimits.validate(v, "rate_limits")
	validCIDRs(v, "edge.allow_health_from", c.Edge.AllowHealthFrom)
	validCIDRs(v, "edge.allow_cron_from", c.Edge.AllowCronFrom)
	if p := c.Edge.ForwardedPrefix; p != "" && (!strings.HasPrefix(p, "/") || strings.HasSuffix(p, "/")) {
		v.Errorf("edge.forwarded_prefix", "must start with / and not end with one, like /mosparo; got %q", p)
	}
	c.validateAdmin(v)
	oneOf(v, "log.level", c.Log.Level, []string{"debug", "info", "warn", "error"})
	oneOf(v, "log.format", c.Log.Format, []LogFormat{LogJSON, LogConsole})
	c.Health.validate(v, "health")
	c.Discovery.validate(v, "discovery")
	c.Compression.validate(v, "compression")
	c.CSSCache.validate(v, "css_cache")
	c.VRRP.validate(v, "vrrp")
	for i, in := range c.VRRP.Instances {
		if in.TrackCSSCache.Mode != TrackPoolOff && c.CSSCache.Backend == "" {
			v.Errorf(fmt.Sprintf("vrrp.instances[%d].track_css_cache.mode", i), "tracks css_cache, which is off; set css_cache.backend or mode: off")
		}
	}
	c.Cron.validate(v, "cron")
	c.validateCronRefs(v)
	c.validateACME(v)
}

func (c *Config) validateListen(v *validator) {
	seen := map[string]bool{}
	names := map[string]bool{}
	for i, l := range c.Listen {
		p := fmt.Sprintf("listen[%d]", i)
		if l.Name != "" {
			if !validFDName(l.Name) {
				v.Errorf(p+".name", "%q is not a systemd FileDescriptorName= (printable ASCII without ':', at most 255 bytes)", clipValue(l.Name))
			} else if names[l.Name] {
				v.Errorf(p+".name", "%q is used by two listeners", l.Name)
			}
			names[l.Name] = true
		}
		if err := hostPort(l.Address); err != nil {
			v.Errorf(p+".address", "%v", err)
		} else if seen[l.Address] {
			v.Errorf(p+".address", "%s is listed twice", l.Address)
		}
		seen[l.Address] = true
		if l.TLS != nil {
			if len(l.TLS.Certificates) == 0 && l.TLS.ACME == nil {
				v.Errorf(p+".tls.certificates", "needs at least one {cert, key} pair, or tls.acme")
			}
			if l.TLS.ACME != nil {
				l.TLS.ACME.validate(v, p+".tls.acme")
			}
			for j, cert := range l.TLS.Certificates {
				cp := fmt.Sprintf("%s.tls.certificates[%d]", p, j)
				if cert.Cert == "" {
					v.Errorf(cp+".cert", "is required: path of a PEM certificate chain")
				}
				if cert.Key == "" {
					v.Errorf(cp+".key", "is required: path of the PEM private key")
				}
			}
			if l.RedirectHTTPS {
				v.Errorf(p+".redirect_https", "only makes sense on a listener without tls")
			}
		}
		if l.DefaultHost != "" && !validHost(l.DefaultHost) {
			v.Errorf(p+".default_host", "%q is not a host name or address with an optional port, like mosparo.example or mosparo.example:8443", l.DefaultHost)
		}
		if l.RedirectPort < 0 || l.RedirectPort > 65535 {
			v.Errorf(p+".redirect_port", "must be a port 1..65535, got %d", l.RedirectPort)
		}
		if pp := l.ProxyProtocol; pp != nil {
			if len(pp.From) == 0 {
				v.Errorf(p+".proxy_protocol.from", "lists no load balancer; name the addresses or CIDRs that send the PROXY header")
			}
			validCIDRs(v, p+".proxy_protocol.from", pp.From)
			if d := pp.Timeout.D(); d <= 0 || d > time.Minute {
				v.Errorf(p+".proxy_protocol.timeout", "must be positive and at most 1m, got %s", d)
			}
		}
		l.validateHTTP2(v, p)
	}
}

func (c *Config) validateNodes(v *validator) {
	names := map[string]bool{}
	addrs := map[string]bool{}
	for i, n := range c.Nodes {
		p := fmt.Sprintf("nodes[%d]", i)
		switch {
		case n.Name == "":
			v.Errorf(p+".name", "is required: a unique name such as node1")
		case strings.ContainsAny(n.Name, "/ \t?#%"):
			v.Errorf(p+".name", "%q may not contain /, spaces, ?, # or %%", n.Name)
		case names[n.Name]:
			v.Errorf(p+".name", "%q is used by another node", n.Name)
		}
		names[n.Name] = true
		if err := hostPort(n.Address); err != nil {
			v.Errorf(p+".address", "%v", err)
		} else if _, port, _ := net.SplitHostPort(n.Address); port == "0" {
			v.Errorf(p+".address", "needs a real port, got %q", n.Address)
		} else if addrs[n.Address] {
			v.Errorf(p+".address", "%s is used by another node", n.Address)
		}
		addrs[n.Address] = true
		if n.Weight < 1 || n.Weight > MaxNodeWeight {
			v.Errorf(p+".weight", "must be 1..%d, got %d", MaxNodeWeight, n.Weight)
		}
	}
}

func (c *Config) validateBalancing(v *validator) {
	oneOf(v, "balancing.policy", c.Balancing.Policy, Policies)
	if r := *c.Balancing.Retries; r < 0 || r > 10 {
		v.Errorf("balancing.retries", "must be 0..10, got %d", r)
	}
	names := map[string]bool{}
	for _, n := range c.Nodes {
		names[n.Name] = true
	}
	if u := c.Balancing.UpdateNode; u != "" && !names[u] && c.Discovery.Consul == nil {
		v.Errorf("balancing.update_node", "no node is named %q", u)
	}
	for class, members := range c.Balancing.Pools {
		p := "balancing.pools." + class
		if !contains(RouteClasses, class) {
			v.Errorf(p, "unknown route class %q; valid: %s", class, strings.Join(RouteClasses, ", "))
			continue
		}
		if len(members) == 0 {
			v.Errorf(p, "lists no nodes; remove it to use every node")
		}
		for j, m := range members {
			if !names[m] && c.Discovery.Consul == nil {
				v.Errorf(fmt.Sprintf("%s[%d]", p, j), "no node is named %q", m)
			}
		}
	}
}

func (c *Config) validateAdmin(v *validator) {
	for i, h := range c.Admin.Hosts {
		p := fmt.Sprintf("admin.hosts[%d]", i)
		// Addresses are always answered; a port would never match, since
		// the Host check compares the name alone.
		if _, err := netip.ParseAddr(strings.Trim(h, "[]")); err == nil {
			v.Errorf(p, "%q is an address; addresses are always answered, list names only", h)
		} else if h == "" || strings.ContainsAny(h, ":[]") || !validHost(h) {
			v.Errorf(p, "%q is not a host name like lb1.example (no port, no wildcard)", h)
		}
	}
	if c.Admin.Listen == "off" {
		return
	}
	if err := hostPort(c.Admin.Listen); err != nil {
		v.Errorf("admin.listen", "%v", err)
		return
	}
	host, _, _ := net.SplitHostPort(c.Admin.Listen)
	ip, err := netip.ParseAddr(host)
	loopback := err == nil && ip.IsLoopback() || host == "localhost"
	if !loopback && c.Admin.Token == "" {
		v.Errorf("admin.listen", "%s is not a loopback address; set admin.token to expose the admin API", c.Admin.Listen)
	}
}

func hostPort(s string) error {
	if s == "" {
		return fmt.Errorf("is required: host:port such as 10.0.0.11:80 or :443")
	}
	_, port, err := net.SplitHostPort(s)
	if err != nil {
		return fmt.Errorf("%q is not host:port (IPv6 goes in brackets: [::1]:80)", s)
	}
	if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("%q has no valid port (0..65535)", s)
	}
	return nil
}

// validHost accepts what a Host header may carry (RFC 9110 7.2): a DNS
// name, an IPv4 address or a bracketed IPv6 address, with an optional port.
func validHost(s string) bool {
	host, port := s, ""
	if strings.HasPrefix(s, "[") {
		end := strings.IndexByte(s, ']')
		if end < 0 {
			return false
		}
		if a, err := netip.ParseAddr(s[1:end]); err != nil || !a.Is6() {
			return false
		}
		host, port = "", s[end+1:]
		if port != "" && port[0] != ':' {
			return false
		}
	} else if i := strings.LastIndexByte(s, ':'); i >= 0 {
		host, port = s[:i], s[i:]
	}
	if port != "" {
		if n, err := strconv.Atoi(port[1:]); err != nil || n < 1 || n > 65535 || port[1] == '+' {
			return false
		}
	}
	if s[0] == '[' {
		return true
	}
	if host == "" || len(host) > 253 {
		return false
	}
	for _, label := range strings.Split(host, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-') {
				return false
			}
		}
	}
	return true
}

// validStripNames accepts header names (RFC 9110 tokens) other than those
// that frame or route a request.
func validStripNames(v *validator, path string, names []string) {
	for i, n := range names {
		p := fmt.Sprintf("%s[%d]", path, i)
		switch strings.ToLower(strings.ReplaceAll(n, "_", "-")) {
		case "host", "content-length", "transfer-encoding":
			v.Errorf(p, "%q cannot be stripped: requests need it", n)
			continue
		}
		if n == "" || len(n) > 64 || strings.IndexFunc(n, func(r rune) bool { return !isTokenRune(r) }) >= 0 {
			v.Errorf(p, "%q is not a header name (letters, digits and !#$%%&'*+-.^_`|~, at most 64)", n)
		}
	}
}

func isTokenRune(r rune) bool {
	return r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("!#$%&'*+-.^_`|~", r)
}

func validCIDRs(v *validator, path string, list []string) {
	for i, s := range list {
		if _, err := ParsePrefix(s); err != nil {
			v.Errorf(fmt.Sprintf("%s[%d]", path, i), "%q is not an address or CIDR such as 10.0.0.0/8 or ::1", s)
		}
	}
}

// ParsePrefix reads a CIDR or a single address (as a /32 or /128).
func ParsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		return p.Masked(), err
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), nil
}

func positive(v *validator, path string, d Duration) {
	if d <= 0 {
		v.Errorf(path, "must be positive")
	}
}

func oneOf[T ~string](v *validator, path string, got T, valid []T) {
	if !slices.Contains(valid, got) {
		names := make([]string, len(valid))
		for i, s := range valid {
			names[i] = string(s)
		}
		v.Errorf(path, "%q is not valid; use one of %s", got, strings.Join(names, ", "))
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// validFDName is systemd's fdname_is_valid: printable ASCII except ':', at
// most 255 bytes.
func validFDName(s string) bool {
	if len(s) > 255 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < ' ' || s[i] > '~' || s[i] == ':' {
			return false
		}
	}
	return true
}

// clipValue keeps a hostile value from flooding a message.
func clipValue(s string) string {
	if len(s) > 64 {
		return s[:64] + "…"
	}
	return s
}
