// The parity oracle: upstream Istio's own xDS generators (the pinned release), run in-process
// with no cluster through pilot/test/xds.NewFakeDiscoveryServer. It reads one scenario as JSON
// on stdin (Kubernetes objects and Istio config as YAML, and the proxies to generate for) and
// writes, for each proxy, the clusters, listeners, routes and endpoints upstream would send it,
// as protojson (every Any expanded). xds/parity/parity.test.ts feeds the same scenario to
// Rigger and compares.
//
// usage: rigger-xds-oracle OUT.json < scenario.json (Istio's own logging goes to stdout)
package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"

	meshconfig "istio.io/api/mesh/v1alpha1"

	"istio.io/istio/pilot/pkg/config/kube/crd"
	"istio.io/istio/pilot/pkg/model"
	"istio.io/istio/pilot/pkg/networking/core"
	netutil "istio.io/istio/pilot/pkg/networking/util"
	"istio.io/istio/pilot/test/xds"
	"istio.io/istio/pkg/config/mesh"
	"istio.io/istio/pkg/test"
	"istio.io/istio/pkg/util/sets"
)

type proxySpec struct {
	Name           string            `json:"name"`
	Namespace      string            `json:"namespace"`
	IP             string            `json:"ip"`
	Labels         map[string]string `json:"labels"`
	ServiceAccount string            `json:"serviceAccount"`
	IstioVersion   string            `json:"istioVersion"`
}

type scenario struct {
	Kubernetes string      `json:"kubernetes"`
	Config     string      `json:"config"`
	Proxies    []proxySpec `json:"proxies"`
	// MeshConfig as YAML over upstream's defaults (istiod's mesh ConfigMap); none: the defaults.
	Mesh string `json:"mesh"`
}

type output struct {
	Clusters  []json.RawMessage `json:"clusters"`
	Listeners []json.RawMessage `json:"listeners"`
	Routes    []json.RawMessage `json:"routes"`
	Endpoints []json.RawMessage `json:"endpoints"`
}

func marshal[T proto.Message](messages []T) []json.RawMessage {
	out := make([]json.RawMessage, 0, len(messages))
	for _, m := range messages {
		b, err := protojson.MarshalOptions{UseProtoNames: false}.Marshal(m)
		if err != nil {
			panic(err)
		}
		out = append(out, b)
	}
	return out
}

func main() {
	if len(os.Args) != 2 {
		fail(fmt.Errorf("usage: rigger-xds-oracle OUT.json < scenario.json"))
	}
	input, err := io.ReadAll(os.Stdin)
	if err != nil {
		fail(err)
	}
	var s scenario
	if err := json.Unmarshal(input, &s); err != nil {
		fail(fmt.Errorf("the scenario is not JSON: %v", err))
	}
	result := map[string]output{}
	err = test.Wrap(func(t test.Failer) {
		// Parsed here rather than by the fake (ConfigString) so each config gets the domain suffix
		// a real istiod gives it: short host names then resolve to <name>.<namespace>.svc.cluster.local.
		configs, _, err := crd.ParseInputs(s.Config)
		if err != nil {
			t.Fatalf("failed to read config: %v", err)
		}
		for i := range configs {
			configs[i].Domain = "cluster.local"
			if configs[i].Namespace == "" {
				configs[i].Namespace = "default"
			}
		}
		var meshConfig *meshconfig.MeshConfig
		if s.Mesh != "" {
			if meshConfig, err = mesh.ApplyMeshConfigDefaults(s.Mesh); err != nil {
				t.Fatalf("failed to read the mesh config: %v", err)
			}
		}
		fake := xds.NewFakeDiscoveryServer(t, xds.FakeOptions{KubernetesObjectString: s.Kubernetes, Configs: configs, MeshConfig: meshConfig})
		for _, p := range s.Proxies {
			ns := p.Namespace
			proxy := fake.SetupProxy(&model.Proxy{
				Type:            model.SidecarProxy,
				ID:              p.Name + "." + ns,
				ConfigNamespace: ns,
				DNSDomain:       ns + ".svc.cluster.local",
				IPAddresses:     []string{p.IP},
				Labels:          p.Labels,
				// As istiod finds it (setTopologyLabels): the pod's istio-locality label, else none.
				Locality: netutil.ConvertLocality(model.GetLocalityLabel(p.Labels[model.LocalityLabel])),
				Metadata: &model.NodeMetadata{
					Namespace:      ns,
					Labels:         p.Labels,
					ServiceAccount: p.ServiceAccount,
					IstioVersion:   orDefault(p.IstioVersion, "1.27.9"),
					ClusterID:      "Kubernetes",
				},
			})
			listeners := fake.Listeners(proxy)
			result[proxy.ID] = output{
				Clusters:  marshal(fake.Clusters(proxy)),
				Listeners: marshal(listeners),
				Routes:    marshal(routes(fake, proxy, listeners)),
				Endpoints: marshal(fake.Endpoints(proxy)),
			}
		}
	})
	if err != nil {
		fail(err)
	}
	out, err := json.MarshalIndent(result, "", " ")
	if err != nil {
		fail(err)
	}
	if err := os.WriteFile(os.Args[1], out, 0o644); err != nil {
		fail(err)
	}
}

// routes builds each route configuration the listeners name once, as Envoy subscribes to a set of
// names (RoutesFromListeners builds a name once per listener naming it, and the later ones of a
// headless Service's per-endpoint listeners come out empty).
func routes(fake *xds.FakeDiscoveryServer, proxy *model.Proxy, listeners []*listener.Listener) []*route.RouteConfiguration {
	names := sets.SortedList(sets.New(core.ExtractRoutesFromListeners(listeners)...))
	resources, _ := fake.ConfigGen.BuildHTTPRoutes(proxy, &model.PushRequest{Push: fake.PushContext()}, names)
	out := make([]*route.RouteConfiguration, 0, len(resources))
	for _, resource := range resources {
		config := &route.RouteConfiguration{}
		if err := resource.Resource.UnmarshalTo(config); err != nil {
			panic(err)
		}
		out = append(out, config)
	}
	return out
}

func orDefault(s, def string) string {
	if strings.TrimSpace(s) == "" {
		return def
	}
	return s
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "rigger-xds-oracle:", err)
	os.Exit(1)
}
