package metadata

import "errors"

var (
	// ErrForeign is returned by Decode for metadata this package did not write
	// (another client's, or free text): it does not start with "io".
	ErrForeign = errors.New("metadata: not inorder commit metadata")

	// ErrCorrupt is returned by Decode for metadata that starts like ours but
	// does not check out: bad base64, too short, a failed checksum, lengths
	// out of bounds, or a body that does not parse.
	ErrCorrupt = errors.New("metadata: corrupt commit metadata")

	// ErrVersion is returned by Decode for authentic metadata (its checksum
	// holds) written in a format version this package does not know.
	ErrVersion = errors.New("metadata: commit metadata of an unknown (newer) format version")

	// ErrMismatch is returned by Decode when the metadata was written for
	// another commit point than the committed offset it came with.
	ErrMismatch = errors.New("metadata: commit metadata written for another commit point")

	// ErrInvalid is returned by Encode and Decode for a negative commit point
	// and by Encode for a negative size budget.
	ErrInvalid = errors.New("metadata: invalid argument")
)
