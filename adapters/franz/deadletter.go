package franz

// This file produces failed records to a dead-letter topic through a kgo
// producer client with the Consumer's brokers, client id, TLS, SASL and
// dialer; what the engine's DeadLetter hook calls.

import (
	"context"
	"crypto/tls"
	"fmt"
	"net"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl"

	"github.com/inorder/inorder/adapters/internal/engine"
)

// ErrDeadLetter wraps every error of a dead-letter produce (the topic does
// not exist, is not authorized, the cluster is unreachable, the broker did
// not acknowledge in time); the message names the dead-letter topic and the
// kgo or broker error is wrapped too (errors.Is a kerr.Error).
var ErrDeadLetter = engine.ErrDeadLetter

// deadLetter produces failed records to one dead-letter topic with a kgo
// client of its own: acks from every in-sync replica, idempotent (kgo's
// default: a produce retried after a lost acknowledgement is not written
// twice), no linger, the partition chosen by engine.DeadLetterPartition.
// Safe for concurrent use; Close it when the Consumer's Run ends.
type deadLetter struct {
	topic   string
	group   string
	timeout time.Duration
	cl      *kgo.Client
}

// newDeadLetter returns the producer of the dead-letter topic topic, with
// the Consumer's brokers, client id, request timeout and the TLS, SASL and
// dialer of its kgo options (WithClientOptions). kgo connects lazily. It
// returns an error wrapping ErrInvalidConfig for an empty topic or one of
// the Consumer's own topics (a failed record would come back to the
// handler), or if kgo refuses the options.
func (c *Consumer) newDeadLetter(topic string) (*deadLetter, error) {
	if topic == "" {
		return nil, fmt.Errorf("%w: dead-letter topic is empty", ErrInvalidConfig)
	}
	for _, t := range c.topics {
		if t == topic {
			return nil, fmt.Errorf("%w: dead-letter topic %q is one of the consumed topics", ErrInvalidConfig, topic)
		}
	}
	timeout := c.opts.RequestTimeout
	opts, err := c.connOpts()
	if err != nil {
		return nil, err
	}
	opts = append(opts,
		kgo.RequiredAcks(kgo.AllISRAcks()),
		kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerLinger(0), // one record at a time: nothing to batch
		// kgo's floor is 1s; Produce's context ends after timeout anyway.
		kgo.RecordDeliveryTimeout(max(timeout, time.Second)),
	)
	cl, err := kgo.NewClient(opts...)
	if err != nil {
		return nil, fmt.Errorf("%w: kgo: %w", ErrInvalidConfig, err)
	}
	return &deadLetter{topic: topic, group: c.group, timeout: timeout, cl: cl}, nil
}

// Produce writes rec to the dead-letter topic with its key, value and
// headers unchanged and the dead-letter headers appended
// (engine.DeadLetter.RecordHeaders: origin, timestamp type, cause's error
// text and Go type, attempts when > 0), to the partition
// engine.DeadLetterPartition chooses, and returns once every in-sync
// replica has it. It blocks at most about RequestTimeout (metadata, then
// the produce), or until ctx ends. It returns nil when the record is
// written, else an error wrapping ErrDeadLetter that names the topic:
// retry it (the engine retries with backoff). Safe for concurrent use.
func (d *deadLetter) Produce(ctx context.Context, rec *kgo.Record, cause error, attempts int) error {
	ctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	out, err := d.record(ctx, rec, cause, attempts)
	if err != nil {
		return err
	}
	if err := d.cl.ProduceSync(ctx, out).FirstErr(); err != nil {
		return d.fail(fmt.Sprintf("produce to partition %d", out.Partition), err)
	}
	return nil
}

// Add is Produce for the exactly-once mode: it records the dead-letter
// record as an output of rec (engine.AddOutput; ctx is the engine's
// dead-letter call's), which the transaction that commits rec as done
// produces (the transactional producer partitions the dead-letter topic
// manually: the record carries its partition). It blocks for the metadata
// request only (at most about RequestTimeout); errors as Produce's.
func (d *deadLetter) Add(ctx context.Context, rec *kgo.Record, cause error, attempts int) error {
	mctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	out, err := d.record(mctx, rec, cause, attempts)
	if err != nil {
		return err
	}
	if err := engine.AddOutput(ctx, out); err != nil {
		return d.fail("add to the transaction", err)
	}
	return nil
}

// record returns the dead-letter record of rec, its partition chosen from
// the topic's partition count (a metadata request).
func (d *deadLetter) record(ctx context.Context, rec *kgo.Record, cause error, attempts int) (*kgo.Record, error) {
	req := kmsg.NewPtrMetadataRequest()
	rt := kmsg.NewMetadataRequestTopic()
	rt.Topic = kmsg.StringPtr(d.topic)
	req.Topics = append(req.Topics, rt)
	resp, err := req.RequestWith(ctx, d.cl)
	if err != nil {
		return nil, d.fail("metadata", err)
	}
	if len(resp.Topics) != 1 {
		return nil, d.fail("metadata", fmt.Errorf("%d topics in the answer", len(resp.Topics)))
	}
	if t := resp.Topics[0]; t.ErrorCode != 0 {
		return nil, d.fail("metadata", kerr.ErrorForCode(t.ErrorCode))
	} else if len(t.Partitions) == 0 {
		return nil, d.fail("metadata", kerr.UnknownTopicOrPartition)
	}
	dl := engine.DeadLetter{
		Topic:         rec.Topic,
		Partition:     rec.Partition,
		Offset:        rec.Offset,
		Timestamp:     rec.Timestamp,
		TimestampType: engine.TimestampType(rec.Attrs.TimestampType()),
		Group:         d.group,
		Err:           cause,
		Attempts:      attempts,
		Headers:       make([]engine.Header, len(rec.Headers)),
	}
	for i, h := range rec.Headers {
		dl.Headers[i] = engine.Header{Key: h.Key, Value: h.Value}
	}
	hs := dl.RecordHeaders()
	headers := make([]kgo.RecordHeader, len(hs))
	for i, h := range hs {
		headers[i] = kgo.RecordHeader{Key: h.Key, Value: h.Value}
	}
	part := engine.DeadLetterPartition(rec.Partition, rec.Key, int32(len(resp.Topics[0].Partitions)))
	return &kgo.Record{
		Topic:     d.topic,
		Partition: part,
		Key:       rec.Key,
		Value:     rec.Value,
		Headers:   headers,
		Timestamp: time.Now(),
	}, nil
}

func (d *deadLetter) fail(doing string, err error) error {
	return fmt.Errorf("%w: topic %q: %s: %w", ErrDeadLetter, d.topic, doing, err)
}

// connOpts are the options of a producer client of the Consumer's: its
// brokers, client id, retry backoff, logger, and the TLS, SASL and dialer of
// its kgo options (WithClientOptions), read back from a client that never
// connects. It returns an error wrapping ErrInvalidConfig if kgo refuses
// the options.
func (c *Consumer) connOpts() ([]kgo.Opt, error) {
	opts := []kgo.Opt{
		kgo.SeedBrokers(c.brokers...),
		kgo.ClientID(c.opts.ClientID),
		kgo.RetryBackoffFn(retryBackoff(c.opts.RetryBackoff)),
		kgo.WithLogger(kgoLogger{c.opts.Logger}),
	}
	if len(c.cfg.extra) > 0 {
		probe, err := kgo.NewClient(c.cfg.extra...)
		if err != nil {
			return nil, fmt.Errorf("%w: kgo: %w", ErrInvalidConfig, err)
		}
		if v, _ := probe.OptValue(kgo.DialTLSConfig).(*tls.Config); v != nil {
			opts = append(opts, kgo.DialTLSConfig(v))
		}
		if v, _ := probe.OptValue(kgo.SASL).([]sasl.Mechanism); len(v) > 0 {
			opts = append(opts, kgo.SASL(v...))
		}
		if v, _ := probe.OptValue(kgo.Dialer).(func(context.Context, string, string) (net.Conn, error)); v != nil {
			opts = append(opts, kgo.Dialer(v))
		}
		probe.Close()
	}
	return opts, nil
}

// Close closes the producer client. Call it after the last Produce.
func (d *deadLetter) Close() { d.cl.Close() }
