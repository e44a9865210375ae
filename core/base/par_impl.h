/*
 * core/base/par_impl.h — small shared settings of the layer ops' loops:
 * OMP(simd ...) emits `#pragma omp simd ...` (vectorised float reductions),
 * which every build compiles with -fopenmp-simd (Makefile BASEFLAGS): a
 * vectorisation hint only, no OpenMP runtime and no threads (those are the
 * engine's own teams, core/base/team.c).
 * PAR_MIN: element counts below this stay on the calling thread (waking the
 * team costs a few microseconds; the unit tests' tiny tensors never pay it).
 */
#ifndef ISIF_PAR_IMPL_H
#define ISIF_PAR_IMPL_H

#define OMP_PRAGMA_(x) _Pragma(#x)
#define OMP(x) OMP_PRAGMA_(omp x)

#define PAR_MIN 32768

#endif
