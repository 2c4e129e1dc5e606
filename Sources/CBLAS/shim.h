#include <cblas.h>
#include <stddef.h>

/* LAPACK's symmetric eigensolver (divide and conquer), which OpenBLAS exports beside
   CBLAS; no LAPACK header is installed, so the Fortran prototype is declared here. The
   trailing lengths are gfortran's hidden character-argument lengths (both 1). */
void dsyevd_(const char *jobz, const char *uplo, const int *n, double *a, const int *lda, double *w,
             double *work, const int *lwork, int *iwork, const int *liwork, int *info,
             size_t jobz_len, size_t uplo_len);
