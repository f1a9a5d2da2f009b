package discovery

import (
	"fmt"
	"net"
	"net/netip"
	"sort"
	"strconv"
	"strings"

	"github.com/mosparo-lb/mosparo-lb/configs"
)

// Sources of a Node.
const (
	SourceStatic = "static"
	SourceConsul = "consul"
)

// Node is one mosparo node as discovery sees it. It is a plain value;
// Nodes returns fresh copies.
type Node struct {
	// Name is unique within a set: a static node's configured name, or a
	// Consul instance's service ID (see mergeNodes for how clashes are named).
	Name string `json:"name"`
	// Address is host:port of the node's HTTP listener.
	Address string `json:"address"`
	// Host replaces the Host header of the LB's own requests; "" means the
	// address. Always "" for Consul instances.
	Host string `json:"host,omitempty"`
	// Weight is 1..configs.MaxNodeWeight.
	Weight int `json:"weight"`
	// Admin nodes are preferred for admin and setup traffic.
	Admin bool `json:"admin"`
	// Source is SourceStatic or SourceConsul.
	Source string `json:"source"`
}

// staticNodes converts the configured nodes, in file order. configs sets
// every weight (issue 13: defaults once, there); a node that skipped it is
// refused, not given the default again here.
func staticNodes(static []configs.Node) ([]Node, error) {
	out := make([]Node, 0, len(static))
	for _, n := range static {
		if n.Weight < 1 || n.Weight > configs.MaxNodeWeight {
			return nil, fmt.Errorf("discovery: node %s: weight %d is not 1..%d: defaults not applied (configs.Load)", n.Name, n.Weight, configs.MaxNodeWeight)
		}
		out = append(out, Node{Name: n.Name, Address: n.Address, Host: n.Host, Weight: n.Weight, Admin: n.Admin, Source: SourceStatic})
	}
	return out, nil
}

// mergeNodes turns parsed Consul instances into nodes and puts them after
// the static ones:
//   - Name is the service ID with characters the admin API cannot carry in a
//     path replaced by "_"; an ID registered on two Consul nodes becomes
//     "<ID>@<node>"; a name taken by a static node gets the prefix "consul:".
//   - Address is Service.Address, or Node.Address when empty, plus the port.
//   - A static node with the same address wins; so does the first of two
//     instances with the same address. Each loser is reported in skipped.
//   - Consul nodes are sorted by name.
func mergeNodes(static []Node, insts []instance, adminTag string) (merged []Node, skipped []string) {
	staticNames := map[string]bool{}
	taken := map[string]bool{}
	for _, n := range static {
		staticNames[n.Name] = true
		taken[canonAddr(n.Address)] = true
	}
	idCount := map[string]int{}
	for _, in := range insts {
		idCount[cleanName(in.ID)]++
	}
	sort.SliceStable(insts, func(i, j int) bool {
		if insts[i].ID != insts[j].ID {
			return insts[i].ID < insts[j].ID
		}
		return insts[i].Node < insts[j].Node
	})
	var consul []Node
	for _, in := range insts {
		addr := net.JoinHostPort(in.Address, strconv.Itoa(in.Port))
		name := cleanName(in.ID)
		if idCount[name] > 1 {
			name += "@" + cleanName(in.Node)
		}
		if staticNames[name] {
			name = "consul:" + name
		}
		key := canonAddr(addr)
		if taken[key] {
			skipped = append(skipped, name+": address "+addr+" is already a node")
			continue
		}
		taken[key] = true
		consul = append(consul, Node{
			Name: name, Address: addr, Weight: in.weight(), Admin: hasTag(in.Tags, adminTag), Source: SourceConsul,
		})
	}
	sort.Slice(consul, func(i, j int) bool { return consul[i].Name < consul[j].Name })
	merged = make([]Node, 0, len(static)+len(consul))
	merged = append(merged, static...)
	return append(merged, consul...), skipped
}

// cleanName keeps a name usable in the admin API path (/nodes/{name}/drain)
// and in logs: the characters configs forbids in node names, control
// characters and non-ASCII become "_".
func cleanName(s string) string {
	return strings.Map(func(r rune) rune {
		if r <= ' ' || r >= 0x7f || strings.ContainsRune("/?#%\\", r) {
			return '_'
		}
		return r
	}, s)
}

// canonAddr normalizes host:port so that "10.0.0.1:80" written two ways (or
// an IPv4-mapped IPv6 form) compares equal; names compare case-insensitively.
func canonAddr(hostport string) string {
	host, port, err := net.SplitHostPort(hostport)
	if err != nil {
		return hostport
	}
	if ip, err := netip.ParseAddr(host); err == nil {
		return ip.Unmap().String() + "|" + port
	}
	return strings.ToLower(strings.TrimSuffix(host, ".")) + "|" + port
}

// hasTag reports whether tags holds want; Consul compares tags
// case-insensitively.
func hasTag(tags []string, want string) bool {
	if want == "" {
		return false
	}
	for _, t := range tags {
		if strings.EqualFold(t, want) {
			return true
		}
	}
	return false
}
