/* metrics/mcnemar.c - McNemar's exact (binomial) test on discordant pairs. */
#include "mcnemar.h"

#include <math.h>

double mcnemar_exact_p(long long b, long long c) {
    long long n = b + c, k = b < c ? b : c;
    if (n <= 0) return 1.0;
    /* sum_{i<=k} C(n,i) 2^-n, each term from lgamma in log space, summed from the largest
     * (i = k) down so that small terms add to a sum of their own size */
    double lg_n1 = lgamma((double)n + 1), ln2n = (double)n * log(2.0);
    double sum = 0;
    for (long long i = k; i >= 0; i--) {
        double t = exp(lg_n1 - lgamma((double)i + 1) - lgamma((double)(n - i) + 1) - ln2n);
        sum += t;
        if (t < sum * 1e-17) break; /* the rest cannot change a double */
    }
    double p = 2 * sum;
    return p > 1 ? 1.0 : p;
}

McNemar mcnemar_instances(const CompatInstance *x, size_t n, double tie_eps) {
    McNemar m = {0, 0, NAN};
    int discrete = n > 0 && x[0].correct1 >= 0 && x[0].correct2 >= 0;
    int scores = n > 0 && !isnan(x[0].score1) && !isnan(x[0].score2);
    if (!discrete && !scores) return m;
    for (size_t i = 0; i < n; i++) {
        if (discrete) {
            m.b += x[i].correct1 && !x[i].correct2;
            m.c += !x[i].correct1 && x[i].correct2;
        } else {
            double d = x[i].score2 - x[i].score1;
            m.b += d < -tie_eps;
            m.c += d > tie_eps;
        }
    }
    m.p = mcnemar_exact_p(m.b, m.c);
    return m;
}
