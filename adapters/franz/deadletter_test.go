package franz_test

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/plain"

	"github.com/inorder/inorder/adapters/franz"
	"github.com/inorder/inorder/internal/kafkatest"
	"github.com/inorder/inorder/internal/kafkatest/adaptertest"
)

// deadLetterRecord is a case as the kgo handler would have received it.
func deadLetterRecord(src string, cs adaptertest.DeadLetterCase) *kgo.Record {
	r := &kgo.Record{Topic: src, Partition: cs.Partition, Offset: cs.Offset, Timestamp: cs.Time, Key: cs.Key, Value: cs.Value}
	for _, h := range cs.Headers {
		r.Headers = append(r.Headers, kgo.RecordHeader{Key: h[0], Value: []byte(h[1])})
	}
	return r
}

func TestDeadLetterWritesSpringHeadersToTheRightPartition(t *testing.T) {
	const src, group = "orders", "billing"
	c := kafkatest.Start(t, kafkatest.WithTopic(src, 4), kafkatest.WithTopic("dlq-same", 4), kafkatest.WithTopic("dlq-fewer", 2))
	ctx := adaptertest.Timeout(t, 60*time.Second)
	cons, err := franz.NewConsumer(c.Addrs(), group, []string{src}, fastOpts(testLogger(t))...)
	if err != nil {
		t.Fatal(err)
	}
	cases := adaptertest.DeadLetterCases(4)
	for _, dlq := range []struct {
		topic      string
		partitions int32
	}{{"dlq-same", 4}, {"dlq-fewer", 2}} {
		t.Run(dlq.topic, func(t *testing.T) {
			d, err := franz.NewDeadLetter(cons, dlq.topic)
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			for _, cs := range cases {
				if err := d.Produce(ctx, deadLetterRecord(src, cs), cs.Err, cs.Attempts); err != nil {
					t.Fatal(err)
				}
			}
			adaptertest.CheckDeadLetters(ctx, t, c, dlq.topic, src, group, cases, func(cs adaptertest.DeadLetterCase) int32 {
				return adaptertest.WantDeadLetterPartition(cs.Partition, cs.Key, dlq.partitions)
			})
		})
	}
}

func TestDeadLetterProducesConcurrently(t *testing.T) {
	const src, group = "orders", "billing"
	c := kafkatest.Start(t, kafkatest.WithTopic(src, 8), kafkatest.WithTopic("dlq", 8))
	ctx := adaptertest.Timeout(t, 60*time.Second)
	cons, err := franz.NewConsumer(c.Addrs(), group, []string{src}, fastOpts(testLogger(t))...)
	if err != nil {
		t.Fatal(err)
	}
	d, err := franz.NewDeadLetter(cons, "dlq")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	cases := adaptertest.DeadLetterCases(8)
	errs := make(chan error, len(cases))
	var wg sync.WaitGroup
	for _, cs := range cases {
		wg.Go(func() { errs <- d.Produce(ctx, deadLetterRecord(src, cs), cs.Err, cs.Attempts) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	adaptertest.CheckDeadLetters(ctx, t, c, "dlq", src, group, cases, func(cs adaptertest.DeadLetterCase) int32 {
		return cs.Partition
	})
}

func TestDeadLetterToAMissingTopicFailsNamingIt(t *testing.T) {
	c := kafkatest.Start(t, kafkatest.WithTopic("in", 1))
	ctx := adaptertest.Timeout(t, 60*time.Second)
	cons, err := franz.NewConsumer(c.Addrs(), "g", []string{"in"},
		append(fastOpts(testLogger(t)), franz.WithRequestTimeout(5*time.Second))...)
	if err != nil {
		t.Fatal(err)
	}
	d, err := franz.NewDeadLetter(cons, "no-such-dlq")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	err = d.Produce(ctx, &kgo.Record{Topic: "in", Value: []byte("v")}, errors.New("boom"), 1)
	t.Logf("Produce: %v", err)
	// The broker's answer, not the request timeout: the error is prompt.
	if !errors.Is(err, franz.ErrDeadLetter) || !errors.Is(err, kerr.UnknownTopicOrPartition) ||
		!strings.Contains(err.Error(), `"no-such-dlq"`) {
		t.Fatalf("Produce = %v, want ErrDeadLetter naming the topic, wrapping UnknownTopicOrPartition", err)
	}
	if n, err := c.Partitions(ctx, "no-such-dlq"); err == nil {
		t.Fatalf("the dead-letter topic was created (%d partitions)", n)
	}
}

func TestDeadLetterUsesTheConsumersSASL(t *testing.T) {
	c := kafkatest.Start(t, kafkatest.WithTopic("in", 1), kafkatest.WithTopic("dlq", 1),
		kafkatest.WithSASL(kafkatest.SASLPlain, "admin", "admin-pw"),
		kafkatest.WithACLUser(kafkatest.SASLPlain, "reader", "pw",
			kfake.ACL{Resource: kmsg.ACLResourceTypeTopic, Name: "in", Pattern: kmsg.ACLResourcePatternTypeLiteral,
				Operation: kmsg.ACLOperationRead, Allow: true}))
	ctx := adaptertest.Timeout(t, 60*time.Second)
	produce := func(user, pass string) error {
		cons, err := franz.NewConsumer(c.Addrs(), "g", []string{"in"}, append(fastOpts(testLogger(t)),
			franz.WithRequestTimeout(5*time.Second),
			franz.WithClientOptions(kgo.SASL(plain.Auth{User: user, Pass: pass}.AsMechanism())))...)
		if err != nil {
			t.Fatal(err)
		}
		d, err := franz.NewDeadLetter(cons, "dlq")
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		return d.Produce(ctx, &kgo.Record{Topic: "in", Value: []byte("v")}, errors.New("boom"), 1)
	}
	err := produce("reader", "pw")
	t.Logf("Produce as reader: %v", err)
	if !errors.Is(err, franz.ErrDeadLetter) || !errors.Is(err, kerr.TopicAuthorizationFailed) ||
		!strings.Contains(err.Error(), `"dlq"`) {
		t.Fatalf("Produce = %v, want ErrDeadLetter naming the topic, wrapping TopicAuthorizationFailed", err)
	}
	// The superuser may: the failure above was the authorization, and the
	// producer authenticated with the consumer's mechanism.
	if err := produce("admin", "admin-pw"); err != nil {
		t.Fatal(err)
	}
}

func TestDeadLetterRefusesBadTopics(t *testing.T) {
	cons, err := franz.NewConsumer([]string{"127.0.0.1:1"}, "g", []string{"in"})
	if err != nil {
		t.Fatal(err)
	}
	for _, topic := range []string{"", "in"} {
		if _, err := franz.NewDeadLetter(cons, topic); !errors.Is(err, franz.ErrInvalidConfig) {
			t.Errorf("topic %q: err = %v, want ErrInvalidConfig", topic, err)
		}
		if _, err := franz.NewConsumer([]string{"127.0.0.1:1"}, "g", []string{"in"}, franz.WithDeadLetter(topic)); !errors.Is(err, franz.ErrInvalidConfig) {
			t.Errorf("WithDeadLetter(%q): err = %v, want ErrInvalidConfig", topic, err)
		}
	}
}

func TestDeadLetterToASilentClusterEndsWithTheRequestTimeout(t *testing.T) {
	ctx := adaptertest.Timeout(t, 60*time.Second)
	cons, err := franz.NewConsumer([]string{adaptertest.SilentBroker(t)}, "g", []string{"in"}, franz.WithRequestTimeout(300*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	d, err := franz.NewDeadLetter(cons, "dlq")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	err = d.Produce(ctx, &kgo.Record{Topic: "in", Value: []byte("v")}, errors.New("boom"), 1)
	t.Logf("Produce: %v", err)
	if !errors.Is(err, franz.ErrDeadLetter) || !strings.Contains(err.Error(), `"dlq"`) || ctx.Err() != nil {
		t.Fatalf("Produce = %v (test ctx %v), want ErrDeadLetter naming the topic before the test's deadline", err, ctx.Err())
	}
}
