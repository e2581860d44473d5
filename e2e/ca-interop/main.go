// rigger-ca-interop: asks a CA for a workload certificate with upstream Istio's own Go CA
// client (security/pkg/nodeagent/caclient/providers/citadel, the one istio-agent uses) and
// verifies the chain with Go's crypto/x509 against a root bundle (istio-ca-root-cert).
// Built by e2e/cluster/build.sh inside the pinned Istio release's module graph.
// Prints one JSON line: {"identity": ..., "chainLength": N, "verified": true} or exits 1.
package main

import (
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"flag"
	"fmt"
	"os"
	"strings"

	"istio.io/istio/pkg/security"
	"istio.io/istio/security/pkg/nodeagent/caclient/providers/citadel"
	"istio.io/istio/security/pkg/pki/util"
)

type fileToken struct{ path string }

func (f fileToken) GetPlatformCredential() (string, error) {
	b, err := os.ReadFile(f.path)
	return strings.TrimSpace(string(b)), err
}
func (fileToken) GetIdentityProvider() string { return "" }
func (fileToken) Stop()                       {}

func fail(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "rigger-ca-interop: "+format+"\n", args...)
	os.Exit(1)
}

func main() {
	endpoint := flag.String("endpoint", "", "CA address host:port")
	san := flag.String("san", "", "the name the CA's serving certificate must carry")
	rootFile := flag.String("root", "", "PEM root bundle to trust (TLS and chain)")
	tokenFile := flag.String("token", "", "file holding a ServiceAccount token (audience istio-ca)")
	ask := flag.String("ask", "spiffe://cluster.local/ns/istio-system/sa/istiod", "identity the CSR asks for")
	ttl := flag.Int64("ttl", 3600, "validity to ask for, seconds")
	flag.Parse()

	opts := &security.Options{CAEndpoint: *endpoint, CAEndpointSAN: *san, CredFetcher: fileToken{*tokenFile}, ClusterID: "Kubernetes"}
	client, err := citadel.NewCitadelClient(opts, &citadel.TLSOptions{RootCert: *rootFile})
	if err != nil {
		fail("client: %v", err)
	}
	defer client.Close()
	csr, _, err := util.GenCSR(util.CertOptions{Host: *ask, ECSigAlg: util.EcdsaSigAlg, ECCCurve: util.P256Curve})
	if err != nil {
		fail("CSR: %v", err)
	}
	chain, err := client.CSRSign(csr, *ttl)
	if err != nil {
		fail("sign: %v", err)
	}
	parse := func(p string) *x509.Certificate {
		block, _ := pem.Decode([]byte(p))
		if block == nil {
			fail("not PEM: %q", p)
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			fail("parse: %v", err)
		}
		return c
	}
	leaf := parse(chain[0])
	intermediates := x509.NewCertPool()
	for _, p := range chain[1 : len(chain)-1] {
		intermediates.AddCert(parse(p))
	}
	rootPEM, err := os.ReadFile(*rootFile)
	if err != nil {
		fail("root: %v", err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(rootPEM) {
		fail("no certificate in %s", *rootFile)
	}
	if _, err := leaf.Verify(x509.VerifyOptions{Roots: roots, Intermediates: intermediates, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}}); err != nil {
		fail("verify: %v", err)
	}
	identity := ""
	if len(leaf.URIs) > 0 {
		identity = leaf.URIs[0].String()
	}
	out, _ := json.Marshal(map[string]any{"identity": identity, "chainLength": len(chain), "verified": true, "notAfter": leaf.NotAfter})
	fmt.Println(string(out))
}
