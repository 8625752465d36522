package confluent_test

import (
	"errors"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/inorder/inorder/adapters/confluent"
	"github.com/inorder/inorder/internal/kafkatest"
	"github.com/inorder/inorder/internal/kafkatest/adaptertest"
)

// deadLetterMessage is a case as the librdkafka handler would have
// received it.
func deadLetterMessage(src string, cs adaptertest.DeadLetterCase) *kafka.Message {
	m := &kafka.Message{
		TopicPartition: kafka.TopicPartition{Topic: &src, Partition: cs.Partition, Offset: kafka.Offset(cs.Offset)},
		Timestamp:      cs.Time,
		TimestampType:  kafka.TimestampCreateTime,
		Key:            cs.Key,
		Value:          cs.Value,
	}
	for _, h := range cs.Headers {
		m.Headers = append(m.Headers, kafka.Header{Key: h[0], Value: []byte(h[1])})
	}
	return m
}

// kafkaCode returns the librdkafka error code err wraps, or ErrNoError.
func kafkaCode(err error) kafka.ErrorCode {
	var ke kafka.Error
	if errors.As(err, &ke) {
		return ke.Code()
	}
	return kafka.ErrNoError
}

func TestDeadLetterWritesSpringHeadersToTheRightPartition(t *testing.T) {
	const src, group = "orders", "billing"
	c := kafkatest.Start(t, kafkatest.WithTopic(src, 4), kafkatest.WithTopic("dlq-same", 4), kafkatest.WithTopic("dlq-fewer", 2))
	ctx := adaptertest.Timeout(t, 60*time.Second)
	before := runtime.NumGoroutine()
	cons, err := confluent.NewConsumer(c.Addrs(), group, []string{src}, fastOpts(testLogger(t))...)
	if err != nil {
		t.Fatal(err)
	}
	cases := adaptertest.DeadLetterCases(4)
	for _, dlq := range []struct {
		topic      string
		partitions int32
	}{{"dlq-same", 4}, {"dlq-fewer", 2}} {
		t.Run(dlq.topic, func(t *testing.T) {
			d, err := confluent.NewDeadLetter(cons, dlq.topic)
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
				return adaptertest.WantDeadLetterPartition(cs.Partition, cs.Key, dlq.partitions)
			})
		})
	}
	adaptertest.WaitFor(ctx, t, "the producers' goroutines to end", func() bool { return runtime.NumGoroutine() <= before })
}

func TestDeadLetterProducesConcurrently(t *testing.T) {
	const src, group = "orders", "billing"
	c := kafkatest.Start(t, kafkatest.WithTopic(src, 8), kafkatest.WithTopic("dlq", 8))
	ctx := adaptertest.Timeout(t, 60*time.Second)
	cons, err := confluent.NewConsumer(c.Addrs(), group, []string{src}, fastOpts(testLogger(t))...)
	if err != nil {
		t.Fatal(err)
	}
	d, err := confluent.NewDeadLetter(cons, "dlq")
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
	cons, err := confluent.NewConsumer(c.Addrs(), "g", []string{"in"},
		append(fastOpts(testLogger(t)), confluent.WithRequestTimeout(5*time.Second))...)
	if err != nil {
		t.Fatal(err)
	}
	d, err := confluent.NewDeadLetter(cons, "no-such-dlq")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	err = d.Produce(ctx, deadLetterMessage("in", adaptertest.DeadLetterCases(1)[0]), errors.New("boom"), 1)
	t.Logf("Produce: %v", err)
	// The broker's answer, not a timeout: the error is prompt.
	if !errors.Is(err, confluent.ErrDeadLetter) || kafkaCode(err) != kafka.ErrUnknownTopicOrPart ||
		!strings.Contains(err.Error(), `"no-such-dlq"`) {
		t.Fatalf("Produce = %v, want ErrDeadLetter naming the topic, wrapping ErrUnknownTopicOrPart", err)
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
	sasl := func(user, pass string) confluent.Option {
		return confluent.WithConfigMap(kafka.ConfigMap{"security.protocol": "SASL_PLAINTEXT",
			"sasl.mechanisms": "PLAIN", "sasl.username": user, "sasl.password": pass})
	}
	cons, err := confluent.NewConsumer(c.Addrs(), "g", []string{"in"}, append(fastOpts(testLogger(t)), sasl("reader", "pw"))...)
	if err != nil {
		t.Fatal(err)
	}
	d, err := confluent.NewDeadLetter(cons, "dlq")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	msg := deadLetterMessage("in", adaptertest.DeadLetterCases(1)[0])
	err = d.Produce(ctx, msg, errors.New("boom"), 1)
	t.Logf("Produce: %v", err)
	if !errors.Is(err, confluent.ErrDeadLetter) || kafkaCode(err) != kafka.ErrTopicAuthorizationFailed ||
		!strings.Contains(err.Error(), `"dlq"`) {
		t.Fatalf("Produce = %v, want ErrDeadLetter naming the topic, wrapping ErrTopicAuthorizationFailed", err)
	}
	// The same settings with the superuser's credentials write the record:
	// the failure above was the authorization (and the SASL settings were
	// copied to the producer).
	admin, err := confluent.NewConsumer(c.Addrs(), "g", []string{"in"}, append(fastOpts(testLogger(t)), sasl("admin", "admin-pw"))...)
	if err != nil {
		t.Fatal(err)
	}
	da, err := confluent.NewDeadLetter(admin, "dlq")
	if err != nil {
		t.Fatal(err)
	}
	defer da.Close()
	if err := da.Produce(ctx, msg, errors.New("boom"), 1); err != nil {
		t.Fatal(err)
	}
}

func TestDeadLetterReplacesAProducerAfterAFatalError(t *testing.T) {
	c := kafkatest.Start(t, kafkatest.WithTopic("in", 1), kafkatest.WithTopic("dlq", 1))
	ctx := adaptertest.Timeout(t, 60*time.Second)
	cons, err := confluent.NewConsumer(c.Addrs(), "g", []string{"in"}, fastOpts(testLogger(t))...)
	if err != nil {
		t.Fatal(err)
	}
	d, err := confluent.NewDeadLetter(cons, "dlq")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	msg := deadLetterMessage("in", adaptertest.DeadLetterCases(1)[0])
	d.InjectFatal()
	err = d.Produce(ctx, msg, errors.New("boom"), 1)
	t.Logf("Produce: %v", err)
	if !errors.Is(err, confluent.ErrDeadLetter) || kafkaCode(err) != kafka.ErrFatal {
		t.Fatalf("Produce after a fatal error = %v, want ErrDeadLetter wrapping ErrFatal", err)
	}
	if err := d.Produce(ctx, msg, errors.New("boom"), 2); err != nil {
		t.Fatalf("Produce with a new producer: %v", err)
	}
	ends, err := c.LogEnd(ctx, "dlq")
	if err != nil {
		t.Fatal(err)
	}
	if ends[0] != 1 {
		t.Fatalf("dead-letter topic holds %d records, want 1", ends[0])
	}
	d.Close()
	if err := d.Produce(ctx, msg, errors.New("boom"), 3); !errors.Is(err, confluent.ErrDeadLetter) {
		t.Fatalf("Produce after Close = %v, want ErrDeadLetter", err)
	}
}

func TestDeadLetterRefusesBadTopics(t *testing.T) {
	cons, err := confluent.NewConsumer([]string{"127.0.0.1:1"}, "g", []string{"in"})
	if err != nil {
		t.Fatal(err)
	}
	for _, topic := range []string{"", "in"} {
		if _, err := confluent.NewDeadLetter(cons, topic); !errors.Is(err, confluent.ErrInvalidConfig) {
			t.Errorf("topic %q: err = %v, want ErrInvalidConfig", topic, err)
		}
	}
}

func TestDeadLetterToASilentClusterEndsWithTheRequestTimeout(t *testing.T) {
	ctx := adaptertest.Timeout(t, 60*time.Second)
	cons, err := confluent.NewConsumer([]string{adaptertest.SilentBroker(t)}, "g", []string{"in"},
		confluent.WithRequestTimeout(500*time.Millisecond), confluent.WithLogger(slogDiscard()))
	if err != nil {
		t.Fatal(err)
	}
	d, err := confluent.NewDeadLetter(cons, "dlq")
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	err = d.Produce(ctx, deadLetterMessage("in", adaptertest.DeadLetterCases(1)[0]), errors.New("boom"), 1)
	t.Logf("Produce: %v", err)
	if !errors.Is(err, confluent.ErrDeadLetter) || !strings.Contains(err.Error(), `"dlq"`) || ctx.Err() != nil {
		t.Fatalf("Produce = %v (test ctx %v), want ErrDeadLetter naming the topic before the test's deadline", err, ctx.Err())
	}
}
