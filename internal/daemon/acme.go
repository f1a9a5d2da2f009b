package daemon

import (
	"reflect"

	"github.com/caddyserver/certmagic"
	"github.com/mosparo-lb/mosparo-lb/acme"
	"github.com/mosparo-lb/mosparo-lb/certstore"
	"github.com/mosparo-lb/mosparo-lb/configs"
	"github.com/mosparo-lb/mosparo-lb/internal/consulclient"
)

// acmeIdentity is what an ACME manager is built from: a generation keeps
// the previous one (its certificates in memory, its running orders) while
// this is unchanged.
type acmeIdentity struct {
	settings          *configs.ACME
	storage           configs.ACMEStorage
	consul            *configs.Consul
	httpPort, tlsPort int
}

func acmeIdentityOf(c *configs.Config) acmeIdentity {
	id := acmeIdentity{settings: c.ACMESettings(), storage: c.ACME, consul: c.Discovery.Consul}
	id.httpPort, id.tlsPort = acmePorts(c)
	return id
}

// acmePorts are the ports the CA's challenges reach this LB on: the first
// plain listener's (http-01) and the first tls.acme listener's (tls-alpn-01).
func acmePorts(c *configs.Config) (httpPort, tlsPort int) {
	for _, l := range c.Listen {
		switch {
		case l.TLS == nil && httpPort == 0:
			httpPort = acme.ListenerPort(l.Address)
		case l.TLS != nil && l.TLS.ACME != nil && tlsPort == 0:
			tlsPort = acme.ListenerPort(l.Address)
		}
	}
	return httpPort, tlsPort
}

// buildACME builds g's ACME manager (nil without tls.acme): the previous
// one when its identity is unchanged, so a reload neither forgets a
// certificate nor orders again. Building reads ca_root and starts nothing;
// the manager runs as a part of the generation from commit on.
func (d *Daemon) buildACME(g, prev *generation) error {
	id := acmeIdentityOf(g.cfg)
	if id.settings == nil {
		return nil
	}
	if prev.acme != nil && reflect.DeepEqual(id, acmeIdentityOf(prev.cfg)) {
		g.acme = prev.acme
		return nil
	}
	storage, err := d.acmeStorage(g.cfg)
	if err != nil {
		return err
	}
	g.acme, err = acme.New(*id.settings, acme.Options{Logger: d.log.Named("acme"), Storage: storage,
		HTTPPort: id.httpPort, TLSPort: id.tlsPort, RenewCheckInterval: d.opts.ACMERenewCheck,
		OCSPCheckInterval: d.opts.ACMERenewCheck})
	return err
}

// acmeStorage is where certificates are shared with the peer LB: Consul
// KV under acme.consul_prefix (locks are Consul sessions) when
// discovery.consul is set, else the directory acme.storage_dir (on shared
// storage for a pair). Neither touches Consul or the disk until used.
func (d *Daemon) acmeStorage(c *configs.Config) (certmagic.Storage, error) {
	cc := c.Discovery.Consul
	if cc == nil {
		return &certmagic.FileStorage{Path: c.ACME.StorageDir}, nil
	}
	opts := certstore.Options{Prefix: c.ACME.ConsulPrefix, Logger: d.log.Named("acme"), Holder: d.host}
	cl, err := consulclient.New(consulclient.Config{Address: cc.Address, Scheme: cc.Scheme, Datacenter: cc.Datacenter,
		Token: cc.Token, MaxAnswer: opts.AnswerBound()})
	if err != nil {
		return nil, err
	}
	return certstore.NewConsul(cl, opts)
}
