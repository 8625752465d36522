package kafkatest

// This file holds the secured-cluster options: TLS listeners (with a
// self-signed certificate made on the fly), SASL users, and a hook that
// sees the header of every request the brokers read (plaintext only).

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// The SASL mechanisms WithSASL accepts.
const (
	SASLPlain       = "PLAIN"
	SASLScramSHA256 = "SCRAM-SHA-256"
	SASLScramSHA512 = "SCRAM-SHA-512"
)

// WithTLS makes the brokers accept only TLS connections, with server (its
// certificate must cover 127.0.0.1); kafkatest's own clients (admin,
// producers) connect with client. See NewTLS for a matching pair.
func WithTLS(server, client *tls.Config) Option {
	return func(c *config) { c.tlsServer, c.tlsClient = server, client }
}

// WithSASL makes the brokers require SASL authentication and adds a
// superuser authenticating with mechanism (SASLPlain, SASLScramSHA256 or
// SASLScramSHA512). May be given several times (one user per mechanism
// and name); kafkatest's own clients authenticate as the first user given.
func WithSASL(mechanism, user, pass string) Option {
	return func(c *config) { c.sasl = append(c.sasl, saslUser{mechanism, user, pass}) }
}

// WithACLUser turns on ACL checks and adds a SASL user (mechanism as for
// WithSASL) allowed only what acls grant (kfake.ACL; the principal is the
// user). Superusers (WithSASL) bypass the checks; give a WithSASL user too,
// for kafkatest's own clients.
func WithACLUser(mechanism, user, pass string, acls ...kfake.ACL) Option {
	return func(c *config) { c.aclUsers = append(c.aclUsers, aclUser{saslUser{mechanism, user, pass}, acls}) }
}

type aclUser struct {
	saslUser
	acls []kfake.ACL
}

// WithRequestHook calls f with the API key and client id of every request
// a broker reads, in the broker's read goroutine (f must not block). It
// sees nothing on TLS listeners (the bytes are encrypted).
func WithRequestHook(f func(apiKey int16, clientID string)) Option {
	return func(c *config) { c.requestHook = f }
}

type saslUser struct{ mechanism, user, pass string }

func (u saslUser) kgo() (sasl.Mechanism, error) {
	switch u.mechanism {
	case SASLPlain:
		return plain.Auth{User: u.user, Pass: u.pass}.AsMechanism(), nil
	case SASLScramSHA256:
		return scram.Auth{User: u.user, Pass: u.pass}.AsSha256Mechanism(), nil
	case SASLScramSHA512:
		return scram.Auth{User: u.user, Pass: u.pass}.AsSha512Mechanism(), nil
	}
	return nil, fmt.Errorf("%w: SASL mechanism %q (want PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512)", ErrBadArgument, u.mechanism)
}

// clientOpts are the options kafkatest's own kgo clients need to reach the
// cluster: seed brokers, TLS, SASL.
func (c *Cluster) clientOpts() []kgo.Opt {
	opts := []kgo.Opt{kgo.SeedBrokers(c.fake.ListenAddrs()...)}
	if c.cfg.tlsClient != nil {
		opts = append(opts, kgo.DialTLSConfig(c.cfg.tlsClient.Clone()))
	}
	if len(c.cfg.sasl) > 0 {
		m, _ := c.cfg.sasl[0].kgo() // checked by New
		opts = append(opts, kgo.SASL(m))
	}
	return opts
}

// TLSConfigs is a self-signed certificate authority and a server
// certificate it signed for 127.0.0.1 and localhost.
type TLSConfigs struct {
	// Server is the brokers' config (for WithTLS).
	Server *tls.Config
	// Client trusts the authority (for WithTLS and the clients under test).
	Client *tls.Config
	// CAPEM is the authority's certificate, PEM-encoded (for clients that
	// take a file or a string, like librdkafka's ssl.ca.pem).
	CAPEM []byte
}

// NewTLS makes a fresh authority and server certificate, valid for a day.
// Two calls make two authorities that do not trust each other.
func NewTLS() (*TLSConfigs, error) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("kafkatest: tls: %w", err)
	}
	now := time.Now()
	ca := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "kafkatest CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		IsCA:                  true,
		KeyUsage:              x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("kafkatest: tls: %w", err)
	}
	caCert, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, fmt.Errorf("kafkatest: tls: %w", err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("kafkatest: tls: %w", err)
	}
	leaf := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "kafkatest broker"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		DNSNames:     []string{"localhost"},
	}
	leafDER, err := x509.CreateCertificate(rand.Reader, leaf, caCert, &key.PublicKey, caKey)
	if err != nil {
		return nil, fmt.Errorf("kafkatest: tls: %w", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(caCert)
	return &TLSConfigs{
		Server: &tls.Config{
			Certificates: []tls.Certificate{{Certificate: [][]byte{leafDER}, PrivateKey: key}},
			MinVersion:   tls.VersionTLS12,
		},
		Client: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12},
		CAPEM:  pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
	}, nil
}

// hookListener passes every accepted connection's reads through a parser
// of the request headers (size, key, version, correlation id, client id).
type hookListener struct {
	net.Listener
	hook func(int16, string)
}

func (l hookListener) Accept() (net.Conn, error) {
	conn, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	pr, pw := io.Pipe()
	go parseRequests(pr, l.hook)
	return &hookConn{Conn: conn, w: pw}, nil
}

type hookConn struct {
	net.Conn
	w *io.PipeWriter
}

func (c *hookConn) Read(b []byte) (int, error) {
	n, err := c.Conn.Read(b)
	if n > 0 {
		_, _ = c.w.Write(b[:n])
	}
	if err != nil {
		c.w.CloseWithError(err)
	}
	return n, err
}

func (c *hookConn) Close() error {
	c.w.Close()
	return c.Conn.Close()
}

// parseRequests reads request frames from r and calls hook with each one's
// key and client id, until r ends (then drains nothing: the writer closed).
func parseRequests(r io.Reader, hook func(int16, string)) {
	br := bufio.NewReader(r)
	defer func() { _, _ = io.Copy(io.Discard, br) }()
	var hdr [4]byte
	for {
		if _, err := io.ReadFull(br, hdr[:]); err != nil {
			return
		}
		size := int(binary.BigEndian.Uint32(hdr[:]))
		if size < 10 || size > 64<<20 {
			return
		}
		body := make([]byte, size)
		if _, err := io.ReadFull(br, body); err != nil {
			return
		}
		key := int16(binary.BigEndian.Uint16(body[0:2]))
		idLen := int(int16(binary.BigEndian.Uint16(body[8:10])))
		id := ""
		if idLen > 0 && 10+idLen <= len(body) {
			id = string(body[10 : 10+idLen])
		}
		hook(key, id)
	}
}
