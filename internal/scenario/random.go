// Copyright The deploylens Authors
// SPDX-License-Identifier: Apache-2.0

package scenario // import "github.com/deploylens/deploylens/internal/scenario"

import (
	"math"
	"math/rand/v2"
)

// Independent random streams of one scenario, so that (for example) turning
// traces off does not change which requests fail: ids come from their own stream.
const (
	streamTraffic uint64 = iota + 1
	streamNoise
	streamIDs
	streamSetup
	// streamCalls draws the calls between services (which requests call,
	// the callee replica, the outcome), so adding calls changes no other draw.
	streamCalls
)

// newRand returns the deterministic generator of one stream of a seed.
func newRand(seed int64, stream uint64) *rand.Rand {
	return rand.New(rand.NewPCG(uint64(seed), stream*0x9e3779b97f4a7c15)) //nolint:gosec // simulation, not security
}

// poisson draws from a Poisson distribution with mean lambda.
func poisson(r *rand.Rand, lambda float64) int {
	switch {
	case lambda <= 0:
		return 0
	case lambda < 30:
		return poissonMultiply(r, lambda)
	default:
		return poissonPTRS(r, lambda)
	}
}

// poissonMultiply is Knuth's product-of-uniforms method: exact, O(lambda).
func poissonMultiply(r *rand.Rand, lambda float64) int {
	limit := math.Exp(-lambda)
	k := 0
	for p := r.Float64(); p > limit; p *= r.Float64() {
		k++
	}
	return k
}

// poissonPTRS is Hörmann's transformed rejection with squeeze (1993): exact
// and O(1) for large means, where the product method would be slow.
func poissonPTRS(r *rand.Rand, lambda float64) int {
	sqrtLambda := math.Sqrt(lambda)
	logLambda := math.Log(lambda)
	b := 0.931 + 2.53*sqrtLambda
	a := -0.059 + 0.02483*b
	invAlpha := 1.1239 + 1.1328/(b-3.4)
	vr := 0.9277 - 3.6224/(b-2)
	for {
		u := r.Float64() - 0.5
		v := r.Float64()
		us := 0.5 - math.Abs(u)
		k := math.Floor((2*a/us+b)*u + lambda + 0.43)
		if us >= 0.07 && v <= vr {
			return int(k)
		}
		if k < 0 || (us < 0.013 && v > us) {
			continue
		}
		logGamma, _ := math.Lgamma(k + 1)
		if math.Log(v)+math.Log(invAlpha)-math.Log(a/(us*us)+b) <= -lambda+k*logLambda-logGamma {
			return int(k)
		}
	}
}

// ar1 is a stationary AR(1) process: Gaussian noise with standard deviation
// sigma whose memory decays with a time constant, so noise drifts rather
// than flickering from step to step.
type ar1 struct {
	value, phi, innovation float64
}

// newAR1 starts the process at a draw from its stationary distribution.
func newAR1(r *rand.Rand, sigma, stepSeconds, tauSeconds float64) ar1 {
	phi := 0.0
	if tauSeconds > 0 {
		phi = math.Exp(-stepSeconds / tauSeconds)
	}
	return ar1{value: sigma * r.NormFloat64(), phi: phi, innovation: sigma * math.Sqrt(1-phi*phi)}
}

func (p *ar1) next(r *rand.Rand) float64 {
	p.value = p.phi*p.value + p.innovation*r.NormFloat64()
	return p.value
}

// lognormalSigma is the log-space standard deviation of a lognormal
// distribution with the given median and 95th percentile.
func lognormalSigma(p50, p95 float64) float64 {
	const z95 = 1.6448536269514722
	return math.Log(p95/p50) / z95
}
