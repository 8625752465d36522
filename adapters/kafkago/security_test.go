package kafkago_test

import (
	"context"
	"crypto/tls"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/segmentio/kafka-go/sasl/scram"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/inorder/inorder/adapters/kafkago"
	"github.com/inorder/inorder/internal/kafkatest"
	"github.com/inorder/inorder/internal/kafkatest/adaptertest"
)

func newTLS(t *testing.T) *kafkatest.TLSConfigs {
	t.Helper()
	certs, err := kafkatest.NewTLS()
	if err != nil {
		t.Fatal(err)
	}
	return certs
}

func scramMechanism(t *testing.T, algo scram.Algorithm, user, pass string) sasl.Mechanism {
	t.Helper()
	m, err := scram.Mechanism(algo, user, pass)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// consumeAll produces n messages to topic on c, consumes them with a new
// consumer of group configured by opts and checks that every message was
// handled and committed.
func consumeAll(t *testing.T, c *kafkatest.Cluster, topic, group string, n int, opts ...kafkago.Option) {
	t.Helper()
	consumeAllThen(t, c, topic, group, n, func(context.Context) {}, opts...)
}

// consumeAllThen is consumeAll calling before(ctx) before it stops the
// consumer.
func consumeAllThen(t *testing.T, c *kafkatest.Cluster, topic, group string, n int, before func(context.Context), opts ...kafkago.Option) {
	t.Helper()
	ctx := adaptertest.Timeout(t, 60*time.Second)
	if _, err := c.Produce(ctx, topic, n); err != nil {
		t.Fatal(err)
	}
	leakBase, _ := clientGoroutines()
	cons, err := kafkago.NewConsumer(c.Addrs(), group, []string{topic}, append(fastOpts(testLogger(t)), opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	rec := newRecorder()
	stop := runConsumer(t, cons, func(_ context.Context, m kafka.Message) error { rec.add(m); return nil })
	adaptertest.WaitFor(ctx, t, "commits at the log end", func() bool { ok, _ := adaptertest.CommittedAtEnd(ctx, c, group, topic); return ok })
	before(ctx)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if got := rec.Distinct(); got != n {
		t.Fatalf("handled %d distinct messages, want %d", got, n)
	}
	checkNoLeak(t, leakBase)
}

// runUntilError runs a consumer configured by opts against c and returns
// Run's error, failing the test if Run does not return by itself.
func runUntilError(t *testing.T, c *kafkatest.Cluster, opts ...kafkago.Option) error {
	t.Helper()
	leakBase, _ := clientGoroutines()
	cons, err := kafkago.NewConsumer(c.Addrs(), "bad-auth", []string{"t"}, append(fastOpts(slogDiscard()), opts...)...)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second) // hang guard only
	defer cancel()
	err = cons.Run(ctx, func(context.Context, kafka.Message) error {
		t.Error("handler called without access to the cluster")
		return nil
	})
	if ctx.Err() != nil {
		t.Fatalf("Run retried until the guard ended it (%v) instead of stopping", err)
	}
	t.Logf("Run = %v", err)
	checkNoLeak(t, leakBase)
	return err
}

// Issue 9: a TLS cluster (self-signed authority) is consumed and committed
// to its end; a client trusting another authority gets a clear error from
// Run instead of endless retries.
func TestTLS(t *testing.T) {
	certs := newTLS(t)
	c := kafkatest.Start(t, kafkatest.WithTopic("t", 2), kafkatest.WithTLS(certs.Server, certs.Client))
	t.Run("everything is consumed and committed", func(t *testing.T) {
		consumeAll(t, c, "t", "tls-group", 300, kafkago.WithTLS(certs.Client))
	})
	t.Run("an unknown authority stops Run with ErrClient", func(t *testing.T) {
		err := runUntilError(t, c, kafkago.WithTLS(newTLS(t).Client))
		if !errors.Is(err, kafkago.ErrClient) || !strings.Contains(err.Error(), "TLS handshake") {
			t.Fatalf("Run = %v, want ErrClient naming the TLS handshake", err)
		}
	})
}

// Issue 9: SASL/PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512 (also over TLS):
// everything consumed and committed; a wrong password stops Run with an
// error wrapping ErrClient and kafka.SASLAuthenticationFailed.
func TestSASL(t *testing.T) {
	certs := newTLS(t)
	for _, tc := range []struct {
		name      string
		mechanism string
		good, bad func(t *testing.T) sasl.Mechanism
		tls       bool
	}{
		{"PLAIN", kafkatest.SASLPlain,
			func(*testing.T) sasl.Mechanism { return plain.Mechanism{Username: "u", Password: "secret"} },
			func(*testing.T) sasl.Mechanism { return plain.Mechanism{Username: "u", Password: "wrong"} }, false},
		{"SCRAM-SHA-256", kafkatest.SASLScramSHA256,
			func(t *testing.T) sasl.Mechanism { return scramMechanism(t, scram.SHA256, "u", "secret") },
			func(t *testing.T) sasl.Mechanism { return scramMechanism(t, scram.SHA256, "u", "wrong") }, false},
		{"SCRAM-SHA-512 over TLS", kafkatest.SASLScramSHA512,
			func(t *testing.T) sasl.Mechanism { return scramMechanism(t, scram.SHA512, "u", "secret") },
			func(t *testing.T) sasl.Mechanism { return scramMechanism(t, scram.SHA512, "u", "wrong") }, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			copts := []kafkatest.Option{kafkatest.WithTopic("t", 2), kafkatest.WithSASL(tc.mechanism, "u", "secret")}
			var tlsOpt []kafkago.Option
			if tc.tls {
				copts = append(copts, kafkatest.WithTLS(certs.Server, certs.Client))
				tlsOpt = append(tlsOpt, kafkago.WithTLS(certs.Client))
			}
			c := kafkatest.Start(t, copts...)
			t.Run("everything is consumed and committed", func(t *testing.T) {
				consumeAll(t, c, "t", "sasl-group", 300, append(tlsOpt, kafkago.WithSASL(tc.good(t)))...)
			})
			t.Run("a wrong password stops Run with ErrClient", func(t *testing.T) {
				err := runUntilError(t, c, append(tlsOpt, kafkago.WithSASL(tc.bad(t)))...)
				if !errors.Is(err, kafkago.ErrClient) || !errors.Is(err, kafka.SASLAuthenticationFailed) ||
					!strings.Contains(err.Error(), "SASL authentication") {
					t.Fatalf("Run = %v, want ErrClient and kafka.SASLAuthenticationFailed, naming SASL authentication", err)
				}
			})
		})
	}
}

func TestSecurityOptionsRefuseNil(t *testing.T) {
	b := []string{"127.0.0.1:9092"}
	for name, opt := range map[string]kafkago.Option{
		"TLS":                    kafkago.WithTLS((*tls.Config)(nil)),
		"SASL":                   kafkago.WithSASL(nil),
		"PartitionWatchInterval": kafkago.WithPartitionWatchInterval(0),
	} {
		if _, err := kafkago.NewConsumer(b, "g", []string{"t"}, opt); !errors.Is(err, kafkago.ErrInvalidConfig) || !strings.Contains(err.Error(), name) {
			t.Errorf("nil %s: %v, want ErrInvalidConfig naming it", name, err)
		}
	}
}

// Issue 9: WithClientID reaches every request the consumer sends: group
// membership, metadata, offsets, fetches, commits, heartbeats.
func TestClientIDReachesEveryRequest(t *testing.T) {
	var (
		mu   sync.Mutex
		keys = map[string]map[int16]bool{} // client id -> request keys
	)
	c := kafkatest.Start(t, kafkatest.WithTopic("t", 2), kafkatest.WithRequestHook(func(key int16, id string) {
		mu.Lock()
		defer mu.Unlock()
		if keys[id] == nil {
			keys[id] = map[int16]bool{}
		}
		keys[id][key] = true
	}))
	seen := func(id string, k kmsg.Key) bool {
		mu.Lock()
		defer mu.Unlock()
		return keys[id][int16(k)]
	}
	consumeAllThen(t, c, "t", "id-group", 100, func(ctx context.Context) {
		adaptertest.WaitFor(ctx, t, "a heartbeat", func() bool { return seen("my-app", kmsg.Heartbeat) })
	}, kafkago.WithClientID("my-app"))
	mu.Lock()
	defer mu.Unlock()
	var ids []string
	for id := range keys {
		if id != "kgo" { // kafkatest's own producer
			ids = append(ids, id)
		}
	}
	if !slices.Equal(ids, []string{"my-app"}) {
		t.Fatalf("client ids seen besides kafkatest's: %q, want only my-app", ids)
	}
	for _, k := range []kmsg.Key{kmsg.Fetch, kmsg.ListOffsets, kmsg.Metadata, kmsg.OffsetCommit, kmsg.OffsetFetch,
		kmsg.FindCoordinator, kmsg.JoinGroup, kmsg.Heartbeat, kmsg.LeaveGroup, kmsg.SyncGroup} {
		if !keys["my-app"][int16(k)] {
			t.Errorf("no %v request with client id my-app", k.Name())
		}
	}
}

// Issue 9: a user the cluster does not authorize for the group gets a
// clear error from Run (ErrClient, not authorized), not endless retries.
func TestNotAuthorizedStopsRun(t *testing.T) {
	c := kafkatest.Start(t, kafkatest.WithTopic("t", 1),
		kafkatest.WithSASL(kafkatest.SASLPlain, "admin", "admin"),
		kafkatest.WithACLUser(kafkatest.SASLPlain, "reader", "pw",
			kfake.ACL{Resource: kmsg.ACLResourceTypeTopic, Name: "t", Pattern: kmsg.ACLResourcePatternTypeLiteral,
				Operation: kmsg.ACLOperationRead, Allow: true}))
	err := runUntilError(t, c, kafkago.WithSASL(plain.Mechanism{Username: "reader", Password: "pw"}))
	if !errors.Is(err, kafkago.ErrClient) || !strings.Contains(err.Error(), "not authorized") {
		t.Fatalf("Run = %v, want ErrClient naming the missing authorization", err)
	}
}
