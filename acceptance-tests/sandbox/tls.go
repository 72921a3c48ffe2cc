package sandbox

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"time"
)

// TLS serves the sandbox over HTTPS, as Klaviyo serves its API. Plain HTTP hides what TLS costs a client: the
// handshakes, the record buffers of every connection and, with HTTP/2, the per-stream flow-control buffers; the
// memory of a whole-catalog sync over HTTPS (issue 12) can only be measured against a server that speaks it.
type TLS struct {
	// On serves HTTPS with a self-signed certificate made at start, valid for the loopback addresses, localhost
	// and the listening address; Server.CertificatePEM returns it for clients to trust.
	On bool
	// HTTP1 offers only HTTP/1.1. By default HTTP/2 is offered too, as Go's servers and most API front ends do,
	// and Go's clients take it; the option lets a benchmark compare the two.
	HTTP1 bool
}

// certValidity is how long the generated certificate is valid: longer than any benchmark or test, short enough that
// a leaked PEM file trusted by mistake soon means nothing.
const certValidity = 7 * 24 * time.Hour

// selfSigned makes a certificate and key for addr: ECDSA P-256 (fast handshakes), valid from an hour ago, so a
// client whose clock is a little behind still accepts it, for certValidity.
func selfSigned(addr net.Addr) (tls.Certificate, []byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("sandbox: TLS key: %w", err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("sandbox: TLS serial: %w", err)
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{Organization: []string{"klaviyo-sandbox"}, CommonName: "klaviyo-sandbox"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(certValidity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
	}
	if ta, ok := addr.(*net.TCPAddr); ok && !ta.IP.IsUnspecified() && !ta.IP.IsLoopback() {
		tmpl.IPAddresses = append(tmpl.IPAddresses, ta.IP)
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), crypto.Signer(key))
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("sandbox: TLS certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("sandbox: TLS certificate: %w", err)
	}
	cert := tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
	return cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), nil
}

// serveTLS makes the certificate and serves srv on ln over TLS; it returns the certificate's PEM. Disabling
// HTTP/2 takes a non-nil, empty TLSNextProto (the documented switch), set before serving.
func serveTLS(srv *http.Server, ln net.Listener, opts TLS) ([]byte, error) {
	cert, certPEM, err := selfSigned(ln.Addr())
	if err != nil {
		return nil, err
	}
	srv.TLSConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	if opts.HTTP1 {
		srv.TLSNextProto = map[string]func(*http.Server, *tls.Conn, http.Handler){}
	}
	go func() { _ = srv.ServeTLS(ln, "", "") }()
	return certPEM, nil
}

// CertificatePEM is the PEM of the certificate an HTTPS sandbox serves (nil over plain HTTP). A client trusts
// the sandbox by adding it to its roots; a Go program on Linux can be pointed at a file holding it with
// SSL_CERT_FILE, which is how the benchmark runs the connector against it unchanged.
func (s *Server) CertificatePEM() []byte { return s.certPEM }
