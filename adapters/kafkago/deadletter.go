package kafkago

// This file produces failed messages to a dead-letter topic through
// kafka-go's Client, with the Consumer's brokers, TLS, SASL and client id;
// what the engine's DeadLetter hook calls.

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/inorder/inorder/adapters/internal/engine"
)

// ErrDeadLetter wraps every error of a dead-letter produce (the topic does
// not exist, is not authorized, the cluster is unreachable, the broker did
// not acknowledge in time); the message names the dead-letter topic and the
// kafka-go error is wrapped too (errors.As a kafka.Error).
var ErrDeadLetter = engine.ErrDeadLetter

// deadLetterMetadataTTL is how often the producer's transport refreshes the
// dead-letter topic's metadata: a topic created (or grown) after the
// producer started is seen within it.
const deadLetterMetadataTTL = 2 * time.Second

// deadLetter produces failed messages to one dead-letter topic, one
// synchronous request per message with acks=all (kafka-go has no
// idempotent producer: a produce retried after a lost acknowledgement can
// write the record twice; the dead-letter topic is at least once). Safe
// for concurrent use; Close it when the Consumer's Run ends.
type deadLetter struct {
	topic     string
	group     string
	timeout   time.Duration
	transport *kafka.Transport
	client    *kafka.Client
}

// newDeadLetter returns the producer of the dead-letter topic topic, with
// the Consumer's brokers, TLS, SASL, client id and request timeout. It does
// not connect. It returns an error wrapping ErrInvalidConfig for an empty
// topic or one of the Consumer's own topics (a failed message would come
// back to the handler).
func (c *Consumer) newDeadLetter(topic string) (*deadLetter, error) {
	if topic == "" {
		return nil, fmt.Errorf("%w: dead-letter topic is empty", ErrInvalidConfig)
	}
	for _, t := range c.topics {
		if t == topic {
			return nil, fmt.Errorf("%w: dead-letter topic %q is one of the consumed topics", ErrInvalidConfig, topic)
		}
	}
	transport := &kafka.Transport{
		DialTimeout:    c.cfg.dialTimeout,
		MetadataTTL:    deadLetterMetadataTTL,
		MetadataTopics: []string{topic}, // so that the broker's per-topic error (unauthorized) is kept
		ClientID:       c.opts.ClientID,
		TLS:            c.cfg.tls,
		SASL:           c.cfg.sasl,
	}
	return &deadLetter{
		topic:     topic,
		group:     c.group,
		timeout:   c.opts.RequestTimeout,
		transport: transport,
		client:    &kafka.Client{Addr: kafka.TCP(c.brokers...), Transport: transport, Timeout: c.opts.RequestTimeout},
	}, nil
}

// Produce writes msg to the dead-letter topic with its key, value and
// headers unchanged and the dead-letter headers appended
// (engine.DeadLetter.RecordHeaders: origin, cause's error text and Go type,
// attempts when > 0), to the partition engine.DeadLetterPartition chooses,
// and returns once the broker acknowledged it from every in-sync replica.
// It blocks at most RequestTimeout (or until ctx ends). It returns nil
// when the record is written, else an error wrapping ErrDeadLetter that
// names the topic: retry it (the engine retries with backoff). The
// timestamp type is reported as CreateTime (kafka.Message does not carry
// it). Safe for concurrent use.
func (d *deadLetter) Produce(ctx context.Context, msg kafka.Message, cause error, attempts int) error {
	ctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	meta, err := d.client.Metadata(ctx, &kafka.MetadataRequest{Topics: []string{d.topic}})
	if err != nil {
		return d.fail("metadata", err)
	}
	if len(meta.Topics) != 1 {
		return d.fail("metadata", fmt.Errorf("%d topics in the answer", len(meta.Topics)))
	}
	if t := meta.Topics[0]; t.Error != nil {
		return d.fail("metadata", t.Error)
	} else if len(t.Partitions) == 0 {
		return d.fail("metadata", kafka.UnknownTopicOrPartition)
	}
	dl := engine.DeadLetter{
		Topic:     msg.Topic,
		Partition: int32(msg.Partition),
		Offset:    msg.Offset,
		Timestamp: msg.Time,
		Group:     d.group,
		Err:       cause,
		Attempts:  attempts,
		Headers:   make([]engine.Header, len(msg.Headers)),
	}
	for i, h := range msg.Headers {
		dl.Headers[i] = engine.Header{Key: h.Key, Value: h.Value}
	}
	hs := dl.RecordHeaders()
	headers := make([]kafka.Header, len(hs))
	for i, h := range hs {
		headers[i] = kafka.Header{Key: h.Key, Value: h.Value}
	}
	part := engine.DeadLetterPartition(int32(msg.Partition), msg.Key, int32(len(meta.Topics[0].Partitions)))
	var key kafka.Bytes
	if msg.Key != nil {
		key = kafka.NewBytes(msg.Key)
	}
	resp, err := d.client.Produce(ctx, &kafka.ProduceRequest{
		Topic:        d.topic,
		Partition:    int(part),
		RequiredAcks: kafka.RequireAll,
		Records: kafka.NewRecordReader(kafka.Record{
			Time:    time.Now(),
			Key:     key,
			Value:   kafka.NewBytes(msg.Value),
			Headers: headers,
		}),
	})
	if err != nil {
		return d.fail(fmt.Sprintf("produce to partition %d", part), err)
	}
	if resp.Error != nil {
		return d.fail(fmt.Sprintf("produce to partition %d", part), resp.Error)
	}
	if len(resp.RecordErrors) > 0 {
		errs := make([]error, 0, len(resp.RecordErrors))
		for _, rerr := range resp.RecordErrors {
			errs = append(errs, rerr)
		}
		return d.fail(fmt.Sprintf("produce to partition %d", part), errors.Join(errs...))
	}
	return nil
}

func (d *deadLetter) fail(doing string, err error) error {
	return fmt.Errorf("%w: topic %q: %s: %w", ErrDeadLetter, d.topic, doing, err)
}

// Close closes the producer's idle connections. A Produce running
// concurrently may open new ones; call Close after the last Produce.
func (d *deadLetter) Close() { d.transport.CloseIdleConnections() }
