namespace CamEngine.Metrics;

/// <summary>
/// ROAD's noisy linear imputation (Rong, Leemann et al., "A Consistent and Efficient Evaluation Strategy for
/// Attribution Methods", ICML 2022; pytorch-grad-cam <c>metrics/road.py</c>): every removed pixel takes the
/// weighted mean of its 8 neighbours, weight 1/6 for the 4 direct and 1/12 for the 4 diagonal ones. Neighbours
/// outside the image are dropped and the remaining weights renormalized (the reference subtracts the missing
/// weights from the diagonal, which is the same equation); neighbours that are themselves removed are unknowns.
/// All removed pixels of a channel are solved jointly, then Gaussian noise of standard deviation
/// <c>noise</c> (input units; the reference uses 0.01 on the normalized input) is added to each imputed value.
/// <para>
/// Written for the removed pixels i with in-image neighbours N(i) and s_i = sum_{j in N(i)} w_ij, the equations are
/// <c>s_i x_i - sum_{j in N(i), removed} w_ij x_j = sum_{j in N(i), kept} w_ij v_j</c>: the matrix D - W is
/// symmetric (w_ij = w_ji, the offsets come in opposite pairs of equal weight) and irreducibly diagonally
/// dominant on every connected group of removed pixels that touches a kept pixel, hence positive definite
/// whenever at least one pixel is kept. It is solved with conjugate gradients (relative residual 1e-10 by default)
/// in double precision, where the reference calls SciPy's direct <c>spsolve</c>. The preconditioner is the
/// diagonal (Jacobi) for thin holes and an <see cref="AggregationMultigrid"/> V-cycle once a hole is more than
/// <see cref="MultigridDepth"/> pixels from the nearest kept pixel: Jacobi's iteration count grows with the hole's
/// radius (a 90% block at 224x224 took about 480 steps per channel), the V-cycle's stays near 20. Both stop at the
/// same residual test, so the preconditioner does not change the solution beyond the tolerance.
/// When every pixel is removed there is nothing to interpolate from: the pixels become 0 (the mean colour of the
/// normalized input) plus the noise.
/// </para>
/// </summary>
internal static class NoisyLinearImputation
{
    /// <summary>Weight of each of the 4 direct neighbours.</summary>
    public const double DirectWeight = 1.0 / 6;

    /// <summary>Weight of each of the 4 diagonal neighbours.</summary>
    public const double DiagonalWeight = 1.0 / 12;

    /// <summary>The noise standard deviation of pytorch-grad-cam's <c>NoisyLinearImputer</c>.</summary>
    public const double DefaultNoise = 0.01;

    /// <summary>
    /// The hole radius (<see cref="SparseSystem.Depth"/>) above which conjugate gradients are preconditioned by
    /// <see cref="AggregationMultigrid"/> rather than by the diagonal (the measured break-even lies near 8-12).
    /// </summary>
    internal const int MultigridDepth = 8;

    private static readonly (int Dy, int Dx, double Weight)[] s_neighbours =
    [
        (-1, -1, DiagonalWeight), (-1, 0, DirectWeight), (-1, 1, DiagonalWeight),
        (0, -1, DirectWeight), (0, 1, DirectWeight),
        (1, -1, DiagonalWeight), (1, 0, DirectWeight), (1, 1, DiagonalWeight),
    ];

    /// <summary>
    /// Imputes the pixels where <paramref name="removed"/> (H*W, row-major) is true in every channel of
    /// <paramref name="image"/> (C, H, W) and returns the new image; kept pixels are copied unchanged.
    /// </summary>
    /// <param name="image">The (C, H, W) image, row-major.</param>
    /// <param name="channels">C.</param>
    /// <param name="height">H.</param>
    /// <param name="width">W.</param>
    /// <param name="removed">H*W flags: true where the pixel is imputed.</param>
    /// <param name="noise">Standard deviation of the Gaussian noise added to imputed values (0: none).</param>
    /// <param name="random">Source of the noise; may be null when <paramref name="noise"/> is 0.</param>
    /// <param name="tolerance">Relative residual at which conjugate gradients stop.</param>
    public static float[] Impute(
        ReadOnlySpan<float> image, int channels, int height, int width, ReadOnlySpan<bool> removed, double noise,
        Random? random, double tolerance = 1e-10)
    {
        int plane = height * width;
        if (channels < 1 || height < 1 || width < 1 || image.Length != channels * plane || removed.Length != plane)
            throw new ArgumentException(
                $"image of {image.Length} values and mask of {removed.Length} do not match ({channels}, {height}, {width})");
        if (!(noise >= 0) || !double.IsFinite(noise))
            throw new ArgumentOutOfRangeException(nameof(noise), noise, "the noise must be a finite number >= 0");
        if (noise > 0)
            ArgumentNullException.ThrowIfNull(random);
        if (!(tolerance > 0))
            throw new ArgumentOutOfRangeException(nameof(tolerance), tolerance, "the tolerance must be > 0");
        var result = image.ToArray();
        var system = new SparseSystem(removed, height, width);
        int m = system.Count;
        if (m == 0)
            return result;
        // The channels share the matrix: they are solved together, interleaved, each to its own tolerance.
        var x = new double[m * channels];
        if (m < plane)
        {
            var rhs = new double[m * channels];
            for (int ch = 0; ch < channels; ch++)
                system.RightHandSide(image.Slice(ch * plane, plane), rhs, ch, channels);
            // Thin holes converge in a few dozen Jacobi steps, cheaper than building and cycling the multigrid
            // hierarchy; wide ones need iterations in proportion to their radius, which the V-cycle removes.
            Action<double[], double[]> precondition = system.Depth > MultigridDepth
                ? system.CreateMultigrid(channels).Apply
                : (r, z) =>
                {
                    for (int i = 0; i < r.Length; i++)
                        z[i] = r[i] / system.Diagonal[i / channels];
                };
            ConjugateGradient.Solve(system.Multiply, precondition, rhs, x, channels, tolerance, 10 * m + 100);
        }
        var draws = new float[m];
        for (int ch = 0; ch < channels; ch++)
        {
            if (noise > 0)
                Methods.GaussianNoise.Fill(random!, draws, noise);
            for (int i = 0; i < m; i++)
                result[ch * plane + system.Pixels[i]] = (float)x[i * channels + ch] + draws[i];
        }
        return result;
    }

    /// <summary>The sparse system D - W over the removed pixels (see the type's remarks), in CSR form.</summary>
    internal sealed class SparseSystem
    {
        private readonly int[] _rowStart;
        private readonly int[] _column;
        private readonly double[] _weight;
        private readonly int[] _knownStart;
        private readonly int[] _knownPixel;
        private readonly double[] _knownWeight;
        private readonly int _width;

        public SparseSystem(ReadOnlySpan<bool> removed, int height, int width)
        {
            _width = width;
            int plane = height * width;
            var variable = new int[plane];
            var pixels = new List<int>();
            for (int p = 0; p < plane; p++)
            {
                variable[p] = removed[p] ? pixels.Count : -1;
                if (removed[p])
                    pixels.Add(p);
            }
            Pixels = [.. pixels];
            int m = Pixels.Length;
            Diagonal = new double[m];
            _rowStart = new int[m + 1];
            _knownStart = new int[m + 1];
            var column = new List<int>();
            var weight = new List<double>();
            var knownPixel = new List<int>();
            var knownWeight = new List<double>();
            for (int i = 0; i < m; i++)
            {
                int y = Pixels[i] / width, x = Pixels[i] % width;
                foreach (var (dy, dx, w) in s_neighbours)
                {
                    int ny = y + dy, nx = x + dx;
                    if (ny < 0 || nx < 0 || ny >= height || nx >= width)
                        continue;
                    int q = ny * width + nx;
                    Diagonal[i] += w;
                    if (variable[q] >= 0)
                    {
                        column.Add(variable[q]);
                        weight.Add(w);
                    }
                    else
                    {
                        knownPixel.Add(q);
                        knownWeight.Add(w);
                    }
                }
                _rowStart[i + 1] = column.Count;
                _knownStart[i + 1] = knownPixel.Count;
            }
            _column = [.. column];
            _weight = [.. weight];
            _knownPixel = [.. knownPixel];
            _knownWeight = [.. knownWeight];
            Depth = MeasureDepth();
        }

        /// <summary>
        /// The largest number of 8-neighbour steps from an unknown to the nearest kept pixel (1 for an unknown
        /// next to one; 0 when nothing is kept): the radius of the widest hole, which sets how many
        /// Jacobi-preconditioned iterations the solve takes.
        /// </summary>
        public int Depth { get; }

        private int MeasureDepth()
        {
            int m = Pixels.Length;
            var depth = new int[m];
            var queue = new int[m];
            int head = 0, tail = 0;
            for (int i = 0; i < m; i++)
            {
                if (_knownStart[i + 1] > _knownStart[i])
                {
                    depth[i] = 1;
                    queue[tail++] = i;
                }
            }
            int deepest = 0;
            while (head < tail)
            {
                int i = queue[head++];
                deepest = depth[i];
                for (int k = _rowStart[i]; k < _rowStart[i + 1]; k++)
                {
                    int j = _column[k];
                    if (depth[j] == 0)
                    {
                        depth[j] = depth[i] + 1;
                        queue[tail++] = j;
                    }
                }
            }
            return deepest;
        }

        /// <summary>The V-cycle preconditioner of this system for <paramref name="systems"/> interleaved right-hand sides.</summary>
        public AggregationMultigrid CreateMultigrid(int systems = 1)
        {
            var value = new double[_weight.Length];
            for (int k = 0; k < value.Length; k++)
                value[k] = -_weight[k];
            var row = new int[Pixels.Length];
            var column = new int[Pixels.Length];
            for (int i = 0; i < Pixels.Length; i++)
            {
                row[i] = Pixels[i] / _width;
                column[i] = Pixels[i] % _width;
            }
            return new AggregationMultigrid(Diagonal, _rowStart, _column, value, row, column, systems);
        }

        /// <summary>The pixel index (row-major) of each unknown.</summary>
        public int[] Pixels { get; }

        /// <summary>Number of unknowns.</summary>
        public int Count => Pixels.Length;

        /// <summary>s_i: the sum of the in-image neighbour weights of each unknown.</summary>
        public double[] Diagonal { get; }

        /// <summary>
        /// result = (D - W) v, for each of the systems that <paramref name="v"/> holds interleaved (its length
        /// over <see cref="Count"/>; see <see cref="ConjugateGradient"/>).
        /// </summary>
        public void Multiply(double[] v, double[] result)
        {
            int n = Pixels.Length, systems = v.Length / n;
            if (systems == 3)
            {
                for (int i = 0; i < n; i++)
                {
                    double s0 = 0, s1 = 0, s2 = 0;
                    for (int k = _rowStart[i]; k < _rowStart[i + 1]; k++)
                    {
                        double w = _weight[k];
                        int j = 3 * _column[k];
                        s0 += w * v[j];
                        s1 += w * v[j + 1];
                        s2 += w * v[j + 2];
                    }
                    double d = Diagonal[i];
                    result[3 * i] = d * v[3 * i] - s0;
                    result[3 * i + 1] = d * v[3 * i + 1] - s1;
                    result[3 * i + 2] = d * v[3 * i + 2] - s2;
                }
                return;
            }
            for (int i = 0; i < n; i++)
            {
                for (int sys = 0; sys < systems; sys++)
                {
                    double s = Diagonal[i] * v[i * systems + sys];
                    for (int k = _rowStart[i]; k < _rowStart[i + 1]; k++)
                        s -= _weight[k] * v[_column[k] * systems + sys];
                    result[i * systems + sys] = s;
                }
            }
        }

        /// <summary>
        /// b_i = sum of w_ij v_j over the kept neighbours of unknown i, from one channel's values, written to
        /// entry i * <paramref name="count"/> + <paramref name="system"/> of <paramref name="b"/>.
        /// </summary>
        public void RightHandSide(ReadOnlySpan<float> values, double[] b, int system = 0, int count = 1)
        {
            for (int i = 0; i < Pixels.Length; i++)
            {
                double s = 0;
                for (int k = _knownStart[i]; k < _knownStart[i + 1]; k++)
                    s += _knownWeight[k] * values[_knownPixel[k]];
                b[i * count + system] = s;
            }
        }
    }
}
