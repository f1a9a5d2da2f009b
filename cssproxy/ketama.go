package cssproxy

import (
	"crypto/md5" //nolint:gosec // libmemcached's ketama is defined on MD5; no security role
	"encoding/binary"
	"fmt"
	"math"
	"net"
	"sort"
	"strconv"
	"strings"

	"github.com/mosparo-lb/mosparo-lb/configs"
)

// ketamaPointsPerServer is libmemcached's MEMCACHED_POINTS_PER_SERVER_KETAMA.
const ketamaPointsPerServer = 160

// memcachedDefaultPort is left out of a server's ketama name.
const memcachedDefaultPort = 11211

// ketama places keys on servers exactly as php-memcached does under the
// options Symfony's MemcachedAdapter sets (OPT_LIBKETAMA_COMPATIBLE:
// libmemcached's weighted ketama, MD5 key hash; FACTS 11.8): each server
// gets points on a circle in proportion to its weight, and a key belongs to
// the first point at or after the MD5 of the key without OPT_PREFIX_KEY. It
// implements gomemcache's ServerSelector, which hands it the prefixed key.
type ketama struct {
	prefix  string
	servers []serverAddr
	points  []ketamaPoint // sorted by value, then server
}

type ketamaPoint struct {
	value uint32
	index int
}

// serverAddr is a dial address gomemcache keys its pool by.
type serverAddr struct{ network, addr string }

func (a serverAddr) Network() string { return a.network }
func (a serverAddr) String() string  { return a.addr }

func newKetama(servers []configs.MemcachedServer, prefix string) *ketama {
	k := &ketama{prefix: prefix}
	var total uint64
	for _, s := range servers {
		k.servers = append(k.servers, serverAddr{s.Addr.Network(), s.Addr.String()})
		total += uint64(ketamaWeight(s))
	}
	for i, s := range servers {
		// libmemcached computes this in float (update_continuum), so do we:
		// a double would round some weights differently.
		pct := float32(ketamaWeight(s)) / float32(total)
		perServer := uint32(math.Floor(float64(pct*ketamaPointsPerServer/4*float32(len(servers))+0.0000000001))) * 4
		name := ketamaName(s.Addr)
		for p := uint32(0); p < perServer/4; p++ {
			sum := md5.Sum([]byte(name + "-" + strconv.FormatUint(uint64(p), 10))) //nolint:gosec // see import
			for x := range 4 {
				k.points = append(k.points, ketamaPoint{binary.LittleEndian.Uint32(sum[4*x:]), i})
			}
		}
	}
	sort.Slice(k.points, func(a, b int) bool {
		pa, pb := k.points[a], k.points[b]
		return pa.value < pb.value || pa.value == pb.value && pa.index < pb.index
	})
	return k
}

// ketamaWeight is libmemcached's: 0 counts as 1.
func ketamaWeight(s configs.MemcachedServer) int {
	if s.Weight == 0 {
		return 1
	}
	return s.Weight
}

// ketamaName is the string libmemcached hashes for a server's points:
// the host as configured, with ":port" unless it is 11211.
func ketamaName(a configs.CacheAddr) string {
	if a.Socket != "" {
		return a.Socket + ":0"
	}
	if a.Port == memcachedDefaultPort {
		return a.Host
	}
	return a.Host + ":" + strconv.Itoa(a.Port)
}

// server returns the index of the server holding key (unprefixed).
func (k *ketama) server(key string) int {
	if len(k.servers) == 1 {
		return 0
	}
	sum := md5.Sum([]byte(key)) //nolint:gosec // see import
	h := binary.LittleEndian.Uint32(sum[:4])
	i := sort.Search(len(k.points), func(i int) bool { return k.points[i].value >= h })
	if i == len(k.points) {
		i = 0
	}
	return k.points[i].index
}

// PickServer maps a stored key (prefix included) to its server.
func (k *ketama) PickServer(key string) (net.Addr, error) {
	if !strings.HasPrefix(key, k.prefix) {
		return nil, fmt.Errorf("memcached key %q lacks prefix_key %q", key, k.prefix)
	}
	return k.servers[k.server(key[len(k.prefix):])], nil
}

// Each calls f for every server.
func (k *ketama) Each(f func(net.Addr) error) error {
	for _, s := range k.servers {
		if err := f(s); err != nil {
			return err
		}
	}
	return nil
}
