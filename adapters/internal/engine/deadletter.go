package engine

// This file describes a dead-letter record without any Kafka client: the
// headers that say where a failed message came from and why it failed
// (Spring Kafka's names and encodings, so that existing tooling reads
// them), their decoder, and the partition rule of the dead-letter topic.
// Each adapter produces the record with its own client.

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"time"
)

// ErrDeadLetter wraps every error of a dead-letter produce (the topic does
// not exist, is not authorized, the cluster is unreachable, the broker did
// not acknowledge in time); the message names the dead-letter topic and the
// client's error is wrapped too.
var ErrDeadLetter = errors.New("inorder: dead-letter produce failed")

// ErrDeadLetterHeaders wraps the errors of ParseDeadLetterHeaders, which
// name the header.
var ErrDeadLetterHeaders = errors.New("inorder: bad dead-letter headers")

// The headers a dead-letter record carries besides the original ones.
// The kafka_dlt-* names and encodings are Spring Kafka's
// (KafkaHeaders.DLT_*, written by DeadLetterRecordManager); inorder-attempts
// is ours.
const (
	// HeaderOriginalTopic is the original topic, UTF-8.
	HeaderOriginalTopic = "kafka_dlt-original-topic"
	// HeaderOriginalPartition is the original partition, a 4-byte
	// big-endian int32.
	HeaderOriginalPartition = "kafka_dlt-original-partition"
	// HeaderOriginalOffset is the original offset, an 8-byte big-endian
	// int64.
	HeaderOriginalOffset = "kafka_dlt-original-offset"
	// HeaderOriginalTimestamp is the original timestamp in milliseconds
	// since the epoch, an 8-byte big-endian int64.
	HeaderOriginalTimestamp = "kafka_dlt-original-timestamp"
	// HeaderOriginalTimestampType is the original timestamp's type, UTF-8:
	// "CreateTime" or "LogAppendTime" (Java's TimestampType.toString()).
	HeaderOriginalTimestampType = "kafka_dlt-original-timestamp-type"
	// HeaderOriginalConsumerGroup is the group that failed the message,
	// UTF-8.
	HeaderOriginalConsumerGroup = "kafka_dlt-original-consumer-group"
	// HeaderExceptionMessage is the error's text (err.Error()), UTF-8.
	HeaderExceptionMessage = "kafka_dlt-exception-message"
	// HeaderExceptionFQCN is the Go type of the handler's error (fmt's %T,
	// e.g. "*orders.RejectedError"), as Spring writes the class of the
	// exception it was given; this module's Permanent wrapper is looked
	// through, a recovered panic is "panic(T)" (see ErrorType).
	HeaderExceptionFQCN = "kafka_dlt-exception-fqcn"
	// HeaderExceptionCauseFQCN is the Go type of the innermost error of
	// the chain errors.Unwrap walks (the root cause), as Spring writes the
	// root cause's class.
	HeaderExceptionCauseFQCN = "kafka_dlt-exception-cause-fqcn"
	// HeaderAttempts is how many times the handler ran the message, in
	// decimal ASCII.
	HeaderAttempts = "inorder-attempts"
)

// TimestampType says what a record's timestamp means; its values are
// Kafka's (the timestamp-type bit of a record batch's attributes).
type TimestampType int8

const (
	// CreateTime is the producer's timestamp (Java: CREATE_TIME).
	CreateTime TimestampType = 0
	// LogAppendTime is the broker's (Java: LOG_APPEND_TIME).
	LogAppendTime TimestampType = 1
)

// String returns the name Java's TimestampType.toString() returns, which
// is what Spring writes in the timestamp-type header: "CreateTime" or
// "LogAppendTime" ("NoTimestampType" for anything else).
func (t TimestampType) String() string {
	switch t {
	case CreateTime:
		return "CreateTime"
	case LogAppendTime:
		return "LogAppendTime"
	}
	return "NoTimestampType"
}

// Header is one record header.
type Header struct {
	Key   string
	Value []byte
}

// DeadLetter describes a failed message to produce to a dead-letter topic:
// where it came from, why and after how many attempts it failed, and its
// key, value and headers, which the dead-letter record carries unchanged.
type DeadLetter struct {
	Topic         string
	Partition     int32
	Offset        int64
	Timestamp     time.Time
	TimestampType TimestampType
	Group         string
	// Err is the handler's last error; nil writes an empty message and
	// type.
	Err error
	// Attempts is how many times the handler ran the message; 0 (not
	// known) leaves out the inorder-attempts header.
	Attempts   int
	Key, Value []byte
	Headers    []Header
}

// RecordHeaders returns the headers of the dead-letter record: d's own
// headers, unchanged and first, then the dead-letter headers (see the
// Header* constants), in this order: topic, partition, offset, timestamp,
// timestamp type, consumer group, exception type, cause type, message,
// attempts. The returned slice is new; values are not shared with d. Safe
// for concurrent use (it only reads d).
func (d *DeadLetter) RecordHeaders() []Header {
	hs := make([]Header, 0, len(d.Headers)+10)
	for _, h := range d.Headers {
		hs = append(hs, Header{h.Key, bytes.Clone(h.Value)})
	}
	var fqcn, cause, msg string
	if d.Err != nil {
		fqcn, msg = ErrorType(d.Err), d.Err.Error()
		cause = ErrorType(rootCause(d.Err))
	}
	hs = append(hs,
		Header{HeaderOriginalTopic, []byte(d.Topic)},
		Header{HeaderOriginalPartition, binary.BigEndian.AppendUint32(nil, uint32(d.Partition))},
		Header{HeaderOriginalOffset, binary.BigEndian.AppendUint64(nil, uint64(d.Offset))},
		Header{HeaderOriginalTimestamp, binary.BigEndian.AppendUint64(nil, uint64(millis(d.Timestamp)))},
		Header{HeaderOriginalTimestampType, []byte(d.TimestampType.String())},
		Header{HeaderOriginalConsumerGroup, []byte(d.Group)},
		Header{HeaderExceptionFQCN, []byte(fqcn)},
		Header{HeaderExceptionCauseFQCN, []byte(cause)},
		Header{HeaderExceptionMessage, []byte(msg)},
	)
	if d.Attempts > 0 {
		hs = append(hs, Header{HeaderAttempts, strconv.AppendInt(nil, int64(d.Attempts), 10)})
	}
	return hs
}

// millis is t in milliseconds since the epoch; the zero time is -1
// (Kafka's "no timestamp").
func millis(t time.Time) int64 {
	if t.IsZero() {
		return -1
	}
	return t.UnixMilli()
}

func typeName(err error) string { return reflect.TypeOf(err).String() }

// DeadLetterInfo is what ParseDeadLetterHeaders reads back from a
// dead-letter record's headers.
type DeadLetterInfo struct {
	Topic         string
	Partition     int32
	Offset        int64
	Timestamp     time.Time // zero when the header holds -1
	TimestampType TimestampType
	Group         string
	ErrType       string // HeaderExceptionFQCN
	ErrCauseType  string // HeaderExceptionCauseFQCN
	ErrMessage    string
	Attempts      int // 0 when the header is absent
	// Headers are the record's other headers (the original message's), in
	// their order.
	Headers []Header
}

// ParseDeadLetterHeaders decodes the dead-letter headers of hs (the last
// occurrence of each wins, as Spring's lastHeader reads them: a record
// dead-lettered twice carries both sets). It returns an error wrapping
// ErrDeadLetterHeaders and naming the header when one of the original
// topic, partition, offset, timestamp and timestamp type headers is
// missing, or when any dead-letter header is malformed (a wrong length,
// an unknown timestamp type, attempts not a positive decimal). Safe for
// concurrent use.
func ParseDeadLetterHeaders(hs []Header) (DeadLetterInfo, error) {
	var (
		info DeadLetterInfo
		seen = map[string]bool{}
	)
	bad := func(key, why string, v []byte) error {
		return fmt.Errorf("%w: %s: %s (value %q)", ErrDeadLetterHeaders, key, why, v)
	}
	// Only the last occurrence of a dead-letter header is decoded; earlier
	// ones (from an earlier dead-lettering) stay among the other headers.
	last := map[string]int{}
	for i, h := range hs {
		last[h.Key] = i
	}
	for i, h := range hs {
		v := h.Value
		if j, ours := last[h.Key]; !ours || j != i || !isDeadLetterHeader(h.Key) {
			info.Headers = append(info.Headers, h)
			continue
		}
		seen[h.Key] = true
		switch h.Key {
		case HeaderOriginalTopic:
			info.Topic = string(v)
		case HeaderOriginalPartition:
			if len(v) != 4 {
				return DeadLetterInfo{}, bad(h.Key, "want 4 bytes", v)
			}
			info.Partition = int32(binary.BigEndian.Uint32(v))
		case HeaderOriginalOffset, HeaderOriginalTimestamp:
			if len(v) != 8 {
				return DeadLetterInfo{}, bad(h.Key, "want 8 bytes", v)
			}
			n := int64(binary.BigEndian.Uint64(v))
			if h.Key == HeaderOriginalOffset {
				info.Offset = n
			} else if n >= 0 {
				info.Timestamp = time.UnixMilli(n)
			}
		case HeaderOriginalTimestampType:
			switch string(v) {
			case "CreateTime":
				info.TimestampType = CreateTime
			case "LogAppendTime":
				info.TimestampType = LogAppendTime
			default:
				return DeadLetterInfo{}, bad(h.Key, "want CreateTime or LogAppendTime", v)
			}
		case HeaderOriginalConsumerGroup:
			info.Group = string(v)
		case HeaderExceptionFQCN:
			info.ErrType = string(v)
		case HeaderExceptionCauseFQCN:
			info.ErrCauseType = string(v)
		case HeaderExceptionMessage:
			info.ErrMessage = string(v)
		case HeaderAttempts:
			n, err := strconv.Atoi(string(v))
			if err != nil || n < 1 {
				return DeadLetterInfo{}, bad(h.Key, "want a positive decimal", v)
			}
			info.Attempts = n
		}
	}
	for _, k := range []string{HeaderOriginalTopic, HeaderOriginalPartition, HeaderOriginalOffset,
		HeaderOriginalTimestamp, HeaderOriginalTimestampType} {
		if !seen[k] {
			return DeadLetterInfo{}, fmt.Errorf("%w: %s missing", ErrDeadLetterHeaders, k)
		}
	}
	return info, nil
}

func isDeadLetterHeader(k string) bool {
	switch k {
	case HeaderOriginalTopic, HeaderOriginalPartition, HeaderOriginalOffset, HeaderOriginalTimestamp,
		HeaderOriginalTimestampType, HeaderOriginalConsumerGroup, HeaderExceptionMessage,
		HeaderExceptionFQCN, HeaderExceptionCauseFQCN, HeaderAttempts:
		return true
	}
	return false
}

// DeadLetterPartition returns the partition of the dead-letter topic, of
// partitions partitions, that a message of partition orig with key goes
// to: orig when the dead-letter topic has it (Spring's default: same
// partition), else the Java default partitioner's choice for the key
// (murmur2, as kafka-go's Murmur2Balancer, librdkafka's murmur2 partitioner
// and kgo's StickyKeyPartitioner compute it), else, for a nil key, orig
// modulo partitions (deterministic, where Java would pick a sticky random
// partition). It panics if partitions < 1 (a programmer error: the caller
// read the count from metadata). Safe for concurrent use.
func DeadLetterPartition(orig int32, key []byte, partitions int32) int32 {
	if partitions < 1 {
		panic("engine: DeadLetterPartition: partitions < 1")
	}
	switch {
	case orig >= 0 && orig < partitions:
		return orig
	case key != nil:
		return int32((murmur2(key) & 0x7fffffff) % uint32(partitions))
	case orig < 0:
		return 0
	}
	return orig % partitions
}

// murmur2 is the Java client's Utils.murmur2 (a port; unsigned result).
func murmur2(data []byte) uint32 {
	const (
		seed uint32 = 0x9747b28c
		m    uint32 = 0x5bd1e995
		r           = 24
	)
	n := len(data)
	h := seed ^ uint32(n)
	for i := 0; i+4 <= n; i += 4 {
		k := binary.LittleEndian.Uint32(data[i:])
		k *= m
		k ^= k >> r
		k *= m
		h *= m
		h ^= k
	}
	tail := data[n&^3:]
	switch len(tail) {
	case 3:
		h ^= uint32(tail[2]) << 16
		fallthrough
	case 2:
		h ^= uint32(tail[1]) << 8
		fallthrough
	case 1:
		h ^= uint32(tail[0])
		h *= m
	}
	h ^= h >> 13
	h *= m
	h ^= h >> 15
	return h
}
