package balancer

import "github.com/mosparo-lb/mosparo-lb/configs"

type configsConfig = configs.Config

func configsParse(name string, b []byte) (*configs.Config, error) {
	return configs.Parse(name, b, func(string) (string, bool) { return "", false })
}
