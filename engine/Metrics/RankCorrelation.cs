namespace CamEngine.Metrics;

/// <summary>Spearman's rank correlation, with tied values given the average of the ranks they span.</summary>
internal static class RankCorrelation
{
    /// <summary>
    /// Ranks 1..n of <paramref name="values"/> (ascending); a run of equal values gets the mean of its ranks
    /// (e.g. [10, 20, 20, 30] ranks [1, 2.5, 2.5, 4]), as SciPy's <c>rankdata(method="average")</c>.
    /// </summary>
    public static double[] AverageRanks(ReadOnlySpan<float> values)
    {
        var v = values.ToArray();
        var order = new int[v.Length];
        for (int i = 0; i < order.Length; i++)
            order[i] = i;
        Array.Sort(order, (a, b) =>
        {
            int c = v[a].CompareTo(v[b]);
            return c != 0 ? c : a.CompareTo(b);
        });
        var ranks = new double[v.Length];
        for (int start = 0; start < order.Length;)
        {
            int end = start + 1;
            while (end < order.Length && v[order[end]].CompareTo(v[order[start]]) == 0)
                end++;
            double rank = (start + 1 + end) / 2.0; // mean of ranks start+1 .. end
            for (int k = start; k < end; k++)
                ranks[order[k]] = rank;
            start = end;
        }
        return ranks;
    }

    /// <summary>
    /// Spearman's rho of two equally long sequences: the Pearson correlation of their average ranks. NaN when
    /// either sequence is constant (its ranks have no variance) or shorter than 2. Throws on NaN values.
    /// </summary>
    public static double Spearman(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        if (a.Length != b.Length)
            throw new ArgumentException($"sequences of {a.Length} and {b.Length} values cannot be correlated");
        foreach (float x in a)
        {
            if (float.IsNaN(x))
                throw new ArgumentException("the first sequence holds NaN", nameof(a));
        }
        foreach (float x in b)
        {
            if (float.IsNaN(x))
                throw new ArgumentException("the second sequence holds NaN", nameof(b));
        }
        if (a.Length < 2)
            return double.NaN;
        var ra = AverageRanks(a);
        var rb = AverageRanks(b);
        double mean = (a.Length + 1) / 2.0; // the mean of any average-rank vector
        double sab = 0, saa = 0, sbb = 0;
        for (int i = 0; i < ra.Length; i++)
        {
            double da = ra[i] - mean, db = rb[i] - mean;
            sab += da * db;
            saa += da * da;
            sbb += db * db;
        }
        return saa == 0 || sbb == 0 ? double.NaN : sab / Math.Sqrt(saa * sbb);
    }
}
