package configs

import (
	"reflect"
	"sort"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

// TestReferenceMentionsEveryKey keeps configs/mosparo-lb.yaml complete: every
// key of the schema appears in it (list entries count if any entry has it).
func TestReferenceMentionsEveryKey(t *testing.T) {
	var root yaml.Node
	if err := yaml.Unmarshal(Reference(), &root); err != nil {
		t.Fatal(err)
	}
	have := map[string]bool{}
	yamlPaths(root.Content[0], "", have)
	var want []string
	typePaths(reflect.TypeOf(Config{}), "", &want)
	sort.Strings(want)
	for _, p := range want {
		if !have[p] {
			t.Errorf("configs/mosparo-lb.yaml does not mention %s", p)
		}
	}
}

func yamlPaths(n *yaml.Node, path string, out map[string]bool) {
	switch n.Kind {
	case yaml.MappingNode:
		for i := 0; i+1 < len(n.Content); i += 2 {
			p := join(path, n.Content[i].Value)
			out[p] = true
			yamlPaths(n.Content[i+1], p, out)
		}
	case yaml.SequenceNode:
		for _, c := range n.Content {
			yamlPaths(c, path+"[]", out)
		}
	}
}

func typePaths(t reflect.Type, path string, out *[]string) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.Struct:
		if t == reflect.TypeOf(time.Duration(0)) {
			return
		}
		for i := 0; i < t.NumField(); i++ {
			tag := strings.Split(t.Field(i).Tag.Get("yaml"), ",")[0]
			if tag == "" || tag == "-" {
				continue
			}
			p := join(path, tag)
			*out = append(*out, p)
			typePaths(t.Field(i).Type, p, out)
		}
	case reflect.Slice:
		typePaths(t.Elem(), path+"[]", out)
	}
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}
