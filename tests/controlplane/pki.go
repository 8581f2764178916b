package main

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"
)

// pki holds the paths of the files the apiserver and the kubeconfig need.
type pki struct {
	caCert, serverCert, serverKey, adminCert, adminKey, saKey string
}

// pkiPaths names the files of a PKI in dir, whether or not they exist yet; a
// restart uses the files an earlier start generated.
func pkiPaths(dir string) *pki {
	return &pki{
		caCert:     filepath.Join(dir, "ca.crt"),
		serverCert: filepath.Join(dir, "apiserver.crt"),
		serverKey:  filepath.Join(dir, "apiserver.key"),
		adminCert:  filepath.Join(dir, "admin.crt"),
		adminKey:   filepath.Join(dir, "admin.key"),
		saKey:      filepath.Join(dir, "sa.key"),
	}
}

// keyPair is a freshly signed certificate with its key, kept in memory so the
// caller can sign further certificates with it.
type keyPair struct {
	cert *x509.Certificate
	der  []byte
	key  crypto.Signer
}

// generatePKI writes a throw-away CA, serving and admin certificates and a
// service-account key into dir. Everything is regenerated on each fresh start: the
// control plane is disposable, so there is no value in keeping keys across
// test runs (a restart with serve --again reuses them, see pkiPaths).
func generatePKI(dir string, ip net.IP) (*pki, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	p := pkiPaths(dir)

	// Backdate NotBefore a little so that small clock differences between
	// this process and a client do not make fresh certificates "not yet valid".
	notBefore := time.Now().Add(-time.Hour)
	notAfter := notBefore.Add(10 * 365 * 24 * time.Hour)

	ca, err := sign(&x509.Certificate{
		Subject:               pkix.Name{CommonName: "alert-poller-test-ca"},
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature | x509.KeyUsageCRLSign,
	}, nil)
	if err != nil {
		return nil, err
	}

	// webpki (used by rustls-based clients such as kube-rs) is strict: it
	// wants an end-entity certificate with the right ExtKeyUsage and the
	// address in a SAN, never in the CN.
	server, err := sign(&x509.Certificate{
		Subject:     pkix.Name{CommonName: "kube-apiserver"},
		NotBefore:   notBefore,
		NotAfter:    notAfter,
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses: servingIPs(ip),
		// The names and address pods use for the apiserver, through the
		// kubernetes Service (in-cluster clients verify them).
		DNSNames: []string{"localhost", "kubernetes", "kubernetes.default",
			"kubernetes.default.svc", "kubernetes.default.svc.cluster.local"},
	}, ca)
	if err != nil {
		return nil, err
	}

	// system:masters is bound to cluster-admin by the bootstrap RBAC policy,
	// so this identity can do anything without any RBAC objects of ours.
	admin, err := sign(&x509.Certificate{
		Subject:     pkix.Name{CommonName: "admin", Organization: []string{"system:masters"}},
		NotBefore:   notBefore,
		NotAfter:    notAfter,
		KeyUsage:    x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}, ca)
	if err != nil {
		return nil, err
	}

	saKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return nil, err
	}

	for _, f := range []struct {
		path, typ string
		der       []byte
	}{
		{p.caCert, "CERTIFICATE", ca.der},
		{p.serverCert, "CERTIFICATE", server.der},
		{p.serverKey, "PRIVATE KEY", mustPKCS8(server.key)},
		{p.adminCert, "CERTIFICATE", admin.der},
		{p.adminKey, "PRIVATE KEY", mustPKCS8(admin.key)},
		{p.saKey, "PRIVATE KEY", mustPKCS8(saKey)},
	} {
		data := pem.EncodeToMemory(&pem.Block{Type: f.typ, Bytes: f.der})
		if err := os.WriteFile(f.path, data, 0o600); err != nil {
			return nil, err
		}
	}
	return p, nil
}

// servingIPs are the addresses the serving certificate names: loopback, the
// listening address, and the kubernetes Service's address (the first of the
// Service range).
func servingIPs(ip net.IP) []net.IP {
	ips := []net.IP{net.IPv4(127, 0, 0, 1), net.IPv4(10, 96, 0, 1)}
	if !ip.IsLoopback() {
		ips = append(ips, ip)
	}
	return ips
}

// sign creates a P-256 key and a certificate for it from tmpl, signed by
// parent, or self-signed when parent is nil. ECDSA keeps start-up fast.
func sign(tmpl *x509.Certificate, parent *keyPair) (*keyPair, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, err
	}
	tmpl.SerialNumber = serial

	issuer, issuerKey := tmpl, crypto.Signer(key)
	if parent != nil {
		issuer, issuerKey = parent.cert, parent.key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, issuer, key.Public(), issuerKey)
	if err != nil {
		return nil, fmt.Errorf("signing %q: %w", tmpl.Subject.CommonName, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &keyPair{cert: cert, der: der, key: key}, nil
}

// mustPKCS8 encodes keys as PKCS#8, the one PEM key format that Go, kubectl
// and rustls-based clients all accept.
func mustPKCS8(key any) []byte {
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		panic(err) // only fails for key types we never pass
	}
	return der
}
