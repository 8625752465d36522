package kafkago_test

import (
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/sasl/plain"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/inorder/inorder/adapters/kafkago"
	"github.com/inorder/inorder/internal/kafkatest"
	"github.com/inorder/inorder/internal/kafkatest/adaptertest"
)

// deadLetterMessage is a case as the kafka-go handler would have received it.
func deadLetterMessage(src string, cs adaptertest.DeadLetterCase) kafka.Message {
	m := kafka.Message{Topic: src, Partition: int(cs.Partition), Offset: cs.Offset, Time: cs.Time, Key: cs.Key, Value: cs.Value}
	for _, h := range cs.Headers {
		m.Headers = append(m.Headers, kafka.Header{Key: h[0], Value: []byte(h[1])})
	}
	return m
}

func TestDeadLetterWritesSpringHeadersToTheRightPartition(t *testing.T) {
	const src, group = "orders", "billing"
	c := kafkatest.Start(t, kafkatest.WithTopic(src, 4), kafkatest.WithTopic("dlq-same", 4), kafkatest.WithTopic("dlq-fewer", 2))
	ctx := adaptertest.Timeout(t, 60*time.Second)
	leakBase, _ := clientGoroutines()
	cons, err := kafkago.NewConsumer(c.Addrs(), group, []string{src}, fastOpts(testLogger(t))...)
	if err != nil {
		t.Fatal(err)
	}
	cases := adaptertest.DeadLetterCases(4)
	for _, dlq := range []struct {
		topic      string
		partitions int32
	}{{"dlq-same", 4}, {"dlq-fewer", 2}} {
		t.Run(dlq.topic, func(t *testing.T) {
			d, err := kafkago.NewDeadLetter(cons, dlq.topic)
			if err != nil {
				t.Fatal(err)
			}
			defer d.Close()
			for _, cs := range cases {
				if err := d.Produce(ctx, deadLetterMessage(src, cs), cs.Err, cs.Attempts); err != nil {
					t.Fatal(err)
				}
			}
			adaptertest.CheckDeadLetters(ctx, t, c, dlq.topic, src, group, cases, func(cs adaptertest.DeadLetterCase) int32 {
				want := adaptertest.WantDeadLetterPartition(cs.Partition, cs.Key, dlq.partitions)
				if cs.Partition >= dlq.partitions && cs.Key != nil {
					// kafka-go's murmur2 balancer (Java-compatible) agrees.
					parts := make([]int, dlq.partitions)
					for i := range parts {
						parts[i] = i
					}
					if kp := (kafka.Murmur2Balancer{}).Balance(kafka.Message{Key: cs.Key}, parts...); int32(kp) != want {
						t.Errorf("key %q: Murmur2Balancer says %d, the rule %d", cs.Key, kp, want)
					}
				}
				return want
			})
		})
	}
	checkNoLeak(t, leakBase)
}

func TestDeadLetterProducesConcurrently(t *testing.T) {
	const src, group = "orders", "billing"
	c := kafkatest.Start(t, kafkatest.WithTopic(src, 8), kafkatest.WithTopic("dlq", 8))
	ctx := adaptertest.Timeout(t, 60*time.Second)
	cons, err := kafkago.NewConsumer(c.Addrs(), group, []string{src}, fastOpts(testLogger(t))...)
	if err != nil {
		t.Fatal(err)
	}
	d, err := kafkago.NewDeadLetter(cons, "dlq")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	cases := adaptertest.DeadLetterCases(8)
	errs := make(chan error, len(cases))
	var wg sync.WaitGroup
	for _, cs := range cases {
		wg.Go(func() { errs <- d.Produce(ctx, deadLetterMessage(src, cs), cs.Err, cs.Attempts) })
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
	cons, err := kafkago.NewConsumer(c.Addrs(), "g", []string{"in"},
		append(fastOpts(testLogger(t)), kafkago.WithRequestTimeout(5*time.Second))...)
	if err != nil {
		t.Fatal(err)
	}
	d, err := kafkago.NewDeadLetter(cons, "no-such-dlq")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	err = d.Produce(ctx, kafka.Message{Topic: "in", Value: []byte("v")}, errors.New("boom"), 1)
	t.Logf("Produce: %v", err)
	// The broker's answer, not the request timeout: the error is prompt.
	if !errors.Is(err, kafkago.ErrDeadLetter) || !errors.Is(err, kafka.UnknownTopicOrPartition) ||
		!strings.Contains(err.Error(), `"no-such-dlq"`) {
		t.Fatalf("Produce = %v, want ErrDeadLetter naming the topic, wrapping UnknownTopicOrPartition", err)
	}
	if n, err := c.Partitions(ctx, "no-such-dlq"); err == nil {
		t.Fatalf("the dead-letter topic was created (%d partitions)", n)
	}
}

func TestDeadLetterNotAuthorizedFails(t *testing.T) {
	c := kafkatest.Start(t, kafkatest.WithTopic("in", 1), kafkatest.WithTopic("dlq", 1),
		kafkatest.WithSASL(kafkatest.SASLPlain, "admin", "admin-pw"),
		kafkatest.WithACLUser(kafkatest.SASLPlain, "reader", "pw",
			kfake.ACL{Resource: kmsg.ACLResourceTypeTopic, Name: "in", Pattern: kmsg.ACLResourcePatternTypeLiteral,
				Operation: kmsg.ACLOperationRead, Allow: true}))
	ctx := adaptertest.Timeout(t, 60*time.Second)
	cons, err := kafkago.NewConsumer(c.Addrs(), "g", []string{"in"},
		append(fastOpts(testLogger(t)), kafkago.WithSASL(plain.Mechanism{Username: "reader", Password: "pw"}))...)
	if err != nil {
		t.Fatal(err)
	}
	d, err := kafkago.NewDeadLetter(cons, "dlq")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	err = d.Produce(ctx, kafka.Message{Topic: "in", Value: []byte("v")}, errors.New("boom"), 1)
	t.Logf("Produce: %v", err)
	if !errors.Is(err, kafkago.ErrDeadLetter) || !errors.Is(err, kafka.TopicAuthorizationFailed) ||
		!strings.Contains(err.Error(), `"dlq"`) {
		t.Fatalf("Produce = %v, want ErrDeadLetter naming the topic, wrapping TopicAuthorizationFailed", err)
	}
	// The superuser may: the same producer settings with its credentials
	// write the record (the failure above was the authorization).
	admin, err := kafkago.NewConsumer(c.Addrs(), "g", []string{"in"},
		append(fastOpts(testLogger(t)), kafkago.WithSASL(plain.Mechanism{Username: "admin", Password: "admin-pw"}))...)
	if err != nil {
		t.Fatal(err)
	}
	da, err := kafkago.NewDeadLetter(admin, "dlq")
	if err != nil {
		t.Fatal(err)
	}
	defer da.Close()
	if err := da.Produce(ctx, kafka.Message{Topic: "in", Value: []byte("v")}, errors.New("boom"), 1); err != nil {
		t.Fatal(err)
	}
}

func TestDeadLetterRefusesBadTopics(t *testing.T) {
	cons, err := kafkago.NewConsumer([]string{"127.0.0.1:1"}, "g", []string{"in"})
	if err != nil {
		t.Fatal(err)
	}
	for _, topic := range []string{"", "in"} {
		if _, err := kafkago.NewDeadLetter(cons, topic); !errors.Is(err, kafkago.ErrInvalidConfig) {
			t.Errorf("topic %q: err = %v, want ErrInvalidConfig", topic, err)
		}
	}
}

func TestDeadLetterToASilentClusterEndsWithTheRequestTimeout(t *testing.T) {
	ctx := adaptertest.Timeout(t, 60*time.Second)
	cons, err := kafkago.NewConsumer([]string{adaptertest.SilentBroker(t)}, "g", []string{"in"}, kafkago.WithRequestTimeout(300*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	d, err := kafkago.NewDeadLetter(cons, "dlq")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	err = d.Produce(ctx, kafka.Message{Topic: "in", Value: []byte("v")}, errors.New("boom"), 1)
	t.Logf("Produce: %v", err)
	if !errors.Is(err, kafkago.ErrDeadLetter) || !strings.Contains(err.Error(), `"dlq"`) || ctx.Err() != nil {
		t.Fatalf("Produce = %v (test ctx %v), want ErrDeadLetter naming the topic before the test's deadline", err, ctx.Err())
	}
}
