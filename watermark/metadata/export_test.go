package metadata

// BestK and RiceLen expose the rice parameter search to the tests.
var (
	BestK   = bestK
	RiceLen = riceLen
)
