package configs

import (
	"fmt"
	"time"

	"gopkg.in/yaml.v3"
)

// Config is the whole mosparo-lb configuration file.
type Config struct {
	// Listen lists the public listeners. Default: one plain HTTP listener on ":80".
	Listen []Listener `yaml:"listen"`
	// TrustedProxies are CIDRs (or single addresses) whose X-Forwarded-For,
	// -Proto, -Host, -Prefix and Forwarded headers are kept and extended.
	// Everyone else's are dropped (FACTS 4). Default: none.
	TrustedProxies []string `yaml:"trusted_proxies"`
	// StripClientIPHeaders are more header names dropped from untrusted
	// peers, besides X-Forwarded-*, Forwarded, X-Real-IP, X-Client-IP and
	// the CDN client-address headers (CF-Connecting-IP, True-Client-IP,
	// Fastly-Client-IP, X-Cluster-Client-IP, CloudFront-Viewer-Address,
	// X-Original-Forwarded-For): any header mosparo's admin UI may be told
	// to take the client address from (FACTS 11.6). Matched ignoring case,
	// with '_' and '-' alike, as PHP reads them. Default: none.
	StripClientIPHeaders []string `yaml:"strip_client_ip_headers"`
	// Nodes are the static mosparo nodes; discovery may add more.
	Nodes     []Node    `yaml:"nodes"`
	Discovery Discovery `yaml:"discovery"`
	Balancing Balancing `yaml:"balancing"`
	Timeouts  Timeouts  `yaml:"timeouts"`
	Limits    Limits    `yaml:"limits"`
	Health    Health    `yaml:"health"`
	Edge      Edge      `yaml:"edge"`
	CSSCache  CSSCache  `yaml:"css_cache"`
	VRRP      VRRP      `yaml:"vrrp"`
	Cron      Cron      `yaml:"cron"`
	Admin     Admin     `yaml:"admin"`
	Log       Log       `yaml:"log"`
	Shutdown  Shutdown  `yaml:"shutdown"`

	// Compression of the nodes' text answers (gzip, brotli).
	Compression Compression `yaml:"compression"`
	// RateLimits are per-client token buckets on the public API.
	RateLimits RateLimits `yaml:"rate_limits"`
	// ACME is where listen[].tls.acme certificates are kept.
	ACME ACMEStorage `yaml:"acme"`
}

// Listener is one public address the balancer accepts on.
type Listener struct {
	// Address is host:port; ":443" listens on every address. A VIP the host
	// does not hold yet is fine (the socket is bound with IP_FREEBIND).
	Address string `yaml:"address"`
	// Name, when set, is the FileDescriptorName= of the socket systemd
	// passes for this listener (socket activation): the socket of that
	// name serves it, and must listen on Address. Default: matched by
	// address alone.
	Name string `yaml:"name"`
	// TLS, when set, terminates TLS (1.2 minimum) on this listener.
	TLS *TLS `yaml:"tls"`
	// RedirectHTTPS answers every plain HTTP request with a 308 to https://
	// on the same host. Only valid on a listener without TLS. Default false.
	RedirectHTTPS bool `yaml:"redirect_https"`
	// RedirectPort is the HTTPS port put into redirects when it is not 443.
	RedirectPort int `yaml:"redirect_port"`
	// DefaultHost is the Host sent to nodes for an HTTP/1.0 request that
	// names none. Default: the first DNS name of the listener's first
	// certificate; without one, such requests get 400.
	DefaultHost string `yaml:"default_host"`
	// ProxyProtocol, when set, makes the listener take the client address
	// from a PROXY protocol (v1 or v2) header, sent before anything else
	// (before the TLS handshake on a TLS listener) by a TCP load balancer in
	// front. Default: off.
	ProxyProtocol *ProxyProtocol `yaml:"proxy_protocol"`
	// HTTP2 tunes HTTP/2 on a TLS listener (http2.go). Default: on, with
	// the defaults documented there.
	HTTP2 *HTTP2 `yaml:"http2"`
}

// ProxyProtocol is which peers of a listener must send a PROXY protocol
// header, and how long they may take to send it.
type ProxyProtocol struct {
	// From are the CIDRs (or single addresses) of the load balancers in
	// front; a connection from any other peer is closed unread. Required.
	From []string `yaml:"from"`
	// Timeout bounds reading the header after the connection is accepted;
	// past it the connection is closed. Default 5s.
	Timeout Duration `yaml:"timeout"`
}

// TLS holds the certificates of a listener; the one whose names match the
// client's SNI is chosen, the first one when nothing matches. An ACME
// domain's managed certificate wins over the files for its name.
type TLS struct {
	Certificates []Certificate `yaml:"certificates"`
	// ACME, when set, obtains and renews certificates for its domains.
	ACME *ACME `yaml:"acme"`
}

// Certificate is a PEM certificate chain and its key.
type Certificate struct {
	Cert string `yaml:"cert"`
	Key  string `yaml:"key"`
}

// Node weights (nodes[].weight; discovery maps Consul's service weights
// into the same range).
const (
	DefaultNodeWeight = 100
	MaxNodeWeight     = 1000
)

// Node is one static mosparo node.
type Node struct {
	// Name identifies the node in logs, /status and the drain API. Unique.
	Name string `yaml:"name"`
	// Address is host:port of the node's HTTP listener.
	Address string `yaml:"address"`
	// Weight for the weighted policy and slow start,
	// 1..MaxNodeWeight. Default DefaultNodeWeight.
	Weight int `yaml:"weight"`
	// Admin nodes are preferred for admin and setup traffic (the node an
	// operator syncs files from); others take over when none is eligible.
	Admin bool `yaml:"admin"`
	// Host, when set, replaces the Host header sent to this node for the
	// LB's own requests (health checks, web cron). Client requests keep
	// their Host. Default: the node address.
	Host string `yaml:"host"`
}

// Policy is a balancing.policy value, spelled as in the file.
type Policy string

// Balancing policies; balancer.NewSelector maps each to its Selector.
const (
	PolicyRoundRobin   Policy = "round_robin"
	PolicyLeastConn    Policy = "least_conn"
	PolicyWeighted     Policy = "weighted"
	PolicyClientIPHash Policy = "client_ip_hash"
)

// Balancing chooses nodes and bounds retries.
type Balancing struct {
	// Policy is round_robin, least_conn, weighted or client_ip_hash. Default least_conn.
	Policy Policy `yaml:"policy"`
	// Retries is how many other nodes a failed request may be tried on
	// (0..10). Default 2. A request that may have reached a node is only
	// retried when its method is idempotent.
	Retries *int `yaml:"retries"`
	// Pools maps route classes to a subset of nodes by name. A class not
	// listed uses every node. Example: {admin: [node1], cron: [node1]}.
	Pools map[string][]string `yaml:"pools"`
	// UpdateNode names the node whose code version the update routes
	// (/administration/update/*) follow: they go only to nodes with its
	// version fingerprint. Default "": the admin: true nodes' version, or
	// the one version every node runs; when that is ambiguous, 503.
	UpdateNode string `yaml:"update_node"`
}

// Timeouts bound every upstream exchange and idle client connections.
type Timeouts struct {
	Connect Duration `yaml:"connect"` // dial to a node. Default 1s.
	Request Duration `yaml:"request"` // whole upstream exchange (write + first byte + body). Default 30s.
	Idle    Duration `yaml:"idle"`    // idle keep-alive client connection. Default 90s.
	// ClientRead bounds reading a client's request (headers and body). Default 30s.
	ClientRead Duration `yaml:"client_read"`
	// UpstreamIdle is how long an idle keep-alive connection to a node is
	// kept; keep it below the node's own keep-alive timeout. Default 4s.
	UpstreamIdle Duration `yaml:"upstream_idle"`
	// Queue is how long a request waits for a connection to its node while
	// limits.max_conns_per_node are busy on every eligible node, then gets
	// 503 with Retry-After;
	// 0 answers 503 at once. Never longer than what is left of request.
	// Default 5s.
	Queue *Duration `yaml:"queue"`
}

// Limits bound what a client may send.
type Limits struct {
	// MaxBodyBytes larger request bodies get 413. Default 8 MiB, PHP's
	// post_max_size, so mosparo's own limits decide for the tools and
	// rule-package imports (FACTS 11.8).
	MaxBodyBytes int `yaml:"max_body_bytes"`
	// BodyBytes lowers the body limit per route class (keys as in
	// balancing.pools), capped at MaxBodyBytes. A class not listed gets
	// MaxBodyBytes, except frontend: 1 MiB unless listed.
	BodyBytes map[string]int `yaml:"body_bytes"`
	// MaxHeaderBytes larger request headers get 431. Default 16 KiB.
	MaxHeaderBytes int `yaml:"max_header_bytes"`
	// MaxConns caps open client connections over all listeners; one more
	// is closed as soon as it is accepted. Default 10000 (about 210 MiB of
	// idle keep-alive connections, scripts/conn-rss.sh); at most 1000000.
	MaxConns int `yaml:"max_conns"`
	// MaxConnsPerIP caps open client connections from one address (one
	// /64 for IPv6); trusted_proxies are exempt, as they carry many clients.
	// Default 256 (a browser opens 6, a large NAT a few dozen); at most
	// max_conns.
	MaxConnsPerIP int `yaml:"max_conns_per_ip"`
	// MaxConnsPerNode caps connections to one node. A full node gets no new
	// requests while another has room; when all are full, requests wait up
	// to timeouts.queue. Default 1024.
	MaxConnsPerNode int `yaml:"max_conns_per_node"`
}

// Edge guards mosparo's infrastructure endpoints from the public side.
type Edge struct {
	// AllowHealthFrom lists CIDRs that may call /api/v1/health/check through
	// the LB. Default: none (the LB probes nodes itself).
	AllowHealthFrom []string `yaml:"allow_health_from"`
	// AllowCronFrom lists CIDRs that may call /cron-jobs/execute through the
	// LB. Default: none (the cron section runs it).
	AllowCronFrom []string `yaml:"allow_cron_from"`
	// ForwardedPrefix, when set, is sent as X-Forwarded-Prefix (mosparo
	// installed under a sub-path of the public URL).
	ForwardedPrefix string `yaml:"forwarded_prefix"`
}

// Admin is the operator listener.
type Admin struct {
	// Listen is host:port for /status and the drain API. Default 127.0.0.1:9090.
	// Empty string "off" disables it.
	Listen string `yaml:"listen"`
	// Token, when set, is required as "Authorization: Bearer <token>" for
	// every write; required for any non-loopback listen address.
	Token string `yaml:"token"`
	// Hosts are the names, besides IP literals and localhost, the listener
	// answers in the Host header (DNS rebinding, issue 11 item 10); a
	// request carrying the token is answered whatever its Host. Default none.
	Hosts []string `yaml:"hosts"`
}

// LogFormat is a log.format value, spelled as in the file.
type LogFormat string

// Log formats: JSON for production (the journal), console for the demo.
const (
	LogJSON    LogFormat = "json"
	LogConsole LogFormat = "console"
)

// Log selects logging.
type Log struct {
	Level     string    `yaml:"level"`      // debug, info, warn, error. Default info.
	Format    LogFormat `yaml:"format"`     // json or console. Default json.
	AccessLog *bool     `yaml:"access_log"` // one line per request. Default true.
}

// Shutdown bounds a graceful stop.
type Shutdown struct {
	// Grace is how long in-flight requests may finish after SIGTERM. Default 10s.
	Grace Duration `yaml:"grace"`
}

// Duration is a time.Duration written the Go way in YAML ("250ms", "2s").
type Duration time.Duration

// D returns the value as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// UnmarshalYAML accepts Go duration strings only, so "2" (seconds? ms?) is an error.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("want a duration such as 250ms or 2s")
	}
	v, err := time.ParseDuration(n.Value)
	if err != nil {
		return fmt.Errorf("%q is not a duration; write it like 250ms, 2s or 1m30s", n.Value)
	}
	if v < 0 {
		return fmt.Errorf("%q is negative", n.Value)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML writes the Go form back.
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }
