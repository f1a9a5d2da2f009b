//go:build tools

// Package deps pins modules before their first importer lands.
package deps

import (
	_ "github.com/bradfitz/gomemcache/memcache"
	_ "github.com/hashicorp/consul/api"
	_ "github.com/mdlayher/arp"
	_ "github.com/mdlayher/ndp"
	_ "github.com/prometheus/client_golang/prometheus"
	_ "github.com/redis/rueidis"
	_ "github.com/valyala/fasthttp"
	_ "github.com/vishvananda/netlink"
	_ "go.uber.org/goleak"
	_ "go.uber.org/zap"
	_ "golang.org/x/net/ipv4"
	_ "gopkg.in/yaml.v3"
)
