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

	cluster "github.com/envoyproxy/go-control-plane/envoy/config/cluster/v3"
	endpoint "github.com/envoyproxy/go-control-plane/envoy/config/endpoint/v3"
	listener "github.com/envoyproxy/go-control-plane/envoy/config/listener/v3"
	route "github.com/envoyproxy/go-control-plane/envoy/config/route/v3"
	hcm "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"

	meshconfig "istio.io/api/mesh/v1alpha1"

	"istio.io/istio/pilot/pkg/config/kube/crd"
	"istio.io/istio/pilot/pkg/model"
	"istio.io/istio/pilot/pkg/networking/core"
	"istio.io/istio/pilot/pkg/networking/grpcgen"
	netutil "istio.io/istio/pilot/pkg/networking/util"
	"istio.io/istio/pilot/pkg/xds/endpoints"
	"istio.io/istio/pilot/test/xds"
	"istio.io/istio/pilot/test/xdstest"
	"istio.io/istio/pkg/config/mesh"
	"istio.io/istio/pkg/spiffe"
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
	// "grpc": a proxyless gRPC client or server, answered by grpcgen with the names it asks for.
	Generator string   `json:"generator"`
	Listeners []string `json:"listeners"`
	// "router": a gateway (Istio Gateway or Gateway API deployment); else a sidecar.
	Type string `json:"type"`
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
			proxyType := model.SidecarProxy
			var verified *spiffe.Identity
			if p.Type == "router" {
				proxyType = model.Router
				// As the xDS server verifies it from the proxy's credentials: a gateway's
				// credentialName Secrets are served from its own namespace.
				verified = &spiffe.Identity{TrustDomain: "cluster.local", Namespace: ns, ServiceAccount: p.ServiceAccount}
			}
			proxy := fake.SetupProxy(&model.Proxy{
				Type:             proxyType,
				VerifiedIdentity: verified,
				ID:               p.Name + "." + ns,
				ConfigNamespace:  ns,
				DNSDomain:        ns + ".svc.cluster.local",
				IPAddresses:      []string{p.IP},
				Labels:           p.Labels,
				// As istiod finds it (setTopologyLabels): the pod's istio-locality label, else none.
				Locality: netutil.ConvertLocality(model.GetLocalityLabel(p.Labels[model.LocalityLabel])),
				Metadata: &model.NodeMetadata{
					Namespace:      ns,
					Labels:         p.Labels,
					ServiceAccount: p.ServiceAccount,
					IstioVersion:   orDefault(p.IstioVersion, "1.27.9"),
					ClusterID:      "Kubernetes",
					Generator:      p.Generator,
				},
			})
			if p.Generator == "grpc" {
				result[proxy.ID] = grpcOutput(fake, proxy, p.Listeners)
				continue
			}
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

// grpcOutput asks grpcgen what a gRPC client would, one step after another: the listeners
// named, the route configurations those name, the clusters the routes name, then their load
// assignments from the sidecar's endpoint builder (gRPC proxies share it).
func grpcOutput(fake *xds.FakeDiscoveryServer, proxy *model.Proxy, listenerNames []string) output {
	gen := &grpcgen.GrpcConfigGenerator{}
	push := fake.PushContext()
	listeners := unpack[*listener.Listener](gen.BuildListeners(proxy, push, listenerNames), func() *listener.Listener { return &listener.Listener{} })
	routeNames := sets.New[string]()
	for _, l := range listeners {
		if api := l.GetApiListener().GetApiListener(); api != nil {
			manager := &hcm.HttpConnectionManager{}
			if err := api.UnmarshalTo(manager); err != nil {
				panic(err)
			}
			if name := manager.GetRds().GetRouteConfigName(); name != "" {
				routeNames.Insert(name)
			}
		}
	}
	routes := unpack[*route.RouteConfiguration](gen.BuildHTTPRoutes(proxy, push, sets.SortedList(routeNames)), func() *route.RouteConfiguration { return &route.RouteConfiguration{} })
	clusterNames := sets.New[string]()
	for _, r := range routes {
		for _, vh := range r.GetVirtualHosts() {
			for _, rt := range vh.GetRoutes() {
				if c := rt.GetRoute().GetCluster(); c != "" {
					clusterNames.Insert(c)
				}
				for _, w := range rt.GetRoute().GetWeightedClusters().GetClusters() {
					clusterNames.Insert(w.GetName())
				}
			}
		}
	}
	clusters := unpack[*cluster.Cluster](gen.BuildClusters(proxy, push, sets.SortedList(clusterNames)), func() *cluster.Cluster { return &cluster.Cluster{} })
	loadAssignments := make([]*endpoint.ClusterLoadAssignment, 0, len(clusters))
	for _, c := range xdstest.ExtractEdsClusterNames(clusters) {
		builder := endpoints.NewEndpointBuilder(c, proxy, push)
		loadAssignments = append(loadAssignments, builder.BuildClusterLoadAssignment(fake.Discovery.Env.EndpointIndex))
	}
	return output{
		Clusters:  marshal(clusters),
		Listeners: marshal(listeners),
		Routes:    marshal(routes),
		Endpoints: marshal(loadAssignments),
	}
}

func unpack[T proto.Message](resources model.Resources, newT func() T) []T {
	out := make([]T, 0, len(resources))
	for _, r := range resources {
		m := newT()
		if err := r.Resource.UnmarshalTo(m); err != nil {
			panic(err)
		}
		out = append(out, m)
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
