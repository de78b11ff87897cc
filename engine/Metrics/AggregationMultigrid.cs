namespace CamEngine.Metrics;

/// <summary>
/// A multigrid V-cycle used as the preconditioner of <see cref="ConjugateGradient"/> for the imputation system
/// of <see cref="NoisyLinearImputation"/>, whose Jacobi-preconditioned iteration count grows with the diameter
/// of a hole (the condition number with its square). Coarse levels are built by aggregation on the pixel grid:
/// the unknowns of each 2x2 block of (coarse) pixels form one coarse unknown, the prolongation P copies a coarse
/// value to every member (piecewise constant), and the coarse matrix is the Galerkin product P^T A P (entry (I, J)
/// sums A's entries between the members of I and J), which stays symmetric positive definite. Levels are added
/// until at most <see cref="CoarsestSize"/> unknowns remain; those are solved exactly by a dense Cholesky factor.
/// <para>
/// One application z = B r is a V-cycle from z = 0: a forward Gauss-Seidel sweep, the residual restricted by
/// P^T, the cycle on the coarser level, its prolongated correction scaled by <see cref="CorrectionScale"/> (an
/// over-correction that offsets the too-stiff piecewise-constant coarse operators; any factor in (0, 2) keeps B
/// positive definite), and a backward Gauss-Seidel sweep. Forward pre- and backward post-smoothing with an exact
/// coarsest solve make B symmetric, as conjugate gradients requires. B only changes how fast the iteration
/// converges: the stopping test, and so the solution to the solver tolerance, is that of the Jacobi iteration.
/// Vectors may hold several systems interleaved (as in <see cref="ConjugateGradient"/>); each sweep then reads
/// every matrix entry once for all of them.
/// </para>
/// </summary>
internal sealed class AggregationMultigrid
{
    /// <summary>The largest number of unknowns solved directly on the coarsest level.</summary>
    public const int CoarsestSize = 64;

    /// <summary>The factor applied to each coarse-level correction.</summary>
    public const double CorrectionScale = 1.5;

    private readonly Level[] _levels;
    private readonly double[] _cholesky;
    private readonly int _coarsestCount;
    private readonly int _systems;

    /// <summary>
    /// Builds the hierarchy for the symmetric matrix A with diagonal <paramref name="diagonal"/> and off-diagonal
    /// entries in CSR form, whose unknown i sits at pixel (<paramref name="row"/>[i], <paramref name="column"/>[i]).
    /// </summary>
    /// <param name="diagonal">A's diagonal (positive).</param>
    /// <param name="rowStart">CSR row starts of the off-diagonal entries (length n + 1).</param>
    /// <param name="entryColumn">The column of each off-diagonal entry.</param>
    /// <param name="entryValue">The value of each off-diagonal entry.</param>
    /// <param name="row">The pixel row of each unknown.</param>
    /// <param name="column">The pixel column of each unknown.</param>
    /// <param name="systems">How many systems the vectors given to <see cref="Apply"/> hold, interleaved.</param>
    public AggregationMultigrid(
        double[] diagonal, int[] rowStart, int[] entryColumn, double[] entryValue, int[] row, int[] column,
        int systems)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(systems, 1);
        _systems = systems;
        var levels = new List<Level>();
        var level = new Level(diagonal, rowStart, entryColumn, entryValue, row, column, systems);
        while (level.Count > CoarsestSize)
        {
            var coarse = level.Coarsen();
            levels.Add(level);
            level = coarse;
        }
        levels.Add(level);
        _levels = [.. levels];
        _coarsestCount = level.Count;
        _cholesky = level.DenseCholesky();
    }

    /// <summary>Number of levels, the finest and the directly solved coarsest included.</summary>
    public int LevelCount => _levels.Length;

    /// <summary>z = B r: one V-cycle from zero (see the type's remarks).</summary>
    public void Apply(double[] r, double[] z) => Cycle(0, r, z);

    private void Cycle(int index, double[] b, double[] x)
    {
        var level = _levels[index];
        if (index == _levels.Length - 1)
        {
            CholeskySolve(b, x);
            return;
        }
        Array.Clear(x);
        level.ForwardGaussSeidel(b, x);
        level.Residual(b, x, level.Scratch);
        var coarse = _levels[index + 1];
        Array.Clear(coarse.Right);
        var aggregate = level.Aggregate;
        int k = _systems;
        for (int i = 0; i < level.Count; i++)
        {
            for (int s = 0; s < k; s++)
                coarse.Right[aggregate[i] * k + s] += level.Scratch[i * k + s];
        }
        Cycle(index + 1, coarse.Right, coarse.Solution);
        for (int i = 0; i < level.Count; i++)
        {
            for (int s = 0; s < k; s++)
                x[i * k + s] += CorrectionScale * coarse.Solution[aggregate[i] * k + s];
        }
        level.BackwardGaussSeidel(b, x);
    }

    private void CholeskySolve(double[] b, double[] x)
    {
        int n = _coarsestCount;
        var l = _cholesky;
        for (int sys = 0; sys < _systems; sys++)
        {
            int q = _systems;
            for (int i = 0; i < n; i++)
            {
                double s = b[i * q + sys];
                for (int k = 0; k < i; k++)
                    s -= l[i * n + k] * x[k * q + sys];
                x[i * q + sys] = s / l[i * n + i];
            }
            for (int i = n - 1; i >= 0; i--)
            {
                double s = x[i * q + sys];
                for (int k = i + 1; k < n; k++)
                    s -= l[k * n + i] * x[k * q + sys];
                x[i * q + sys] = s / l[i * n + i];
            }
        }
    }

    /// <summary>One level: its matrix, the pixel position of each unknown, and its aggregation to the next.</summary>
    private sealed class Level
    {
        private readonly double[] _diagonal;
        private readonly int[] _rowStart;
        private readonly int[] _entryColumn;
        private readonly double[] _entryValue;
        private readonly int[] _row;
        private readonly int[] _column;
        private readonly int _systems;
        private readonly double[] _sums;

        public Level(
            double[] diagonal, int[] rowStart, int[] entryColumn, double[] entryValue, int[] row, int[] column,
            int systems)
        {
            _systems = systems;
            _sums = new double[systems];
            _diagonal = diagonal;
            _rowStart = rowStart;
            _entryColumn = entryColumn;
            _entryValue = entryValue;
            _row = row;
            _column = column;
            Right = new double[Count * systems];
            Solution = new double[Count * systems];
            Scratch = new double[Count * systems];
            Aggregate = [];
        }

        public int Count => _diagonal.Length;

        /// <summary>The right-hand side this level is cycled on (filled by the finer level).</summary>
        public double[] Right { get; }

        /// <summary>The cycle's result on this level (read by the finer level).</summary>
        public double[] Solution { get; }

        /// <summary>Room for the residual.</summary>
        public double[] Scratch { get; }

        /// <summary>The coarse unknown of each unknown; empty on the coarsest level.</summary>
        public int[] Aggregate { get; private set; }

        /// <summary>Groups 2x2 pixel blocks and forms P^T A P.</summary>
        public Level Coarsen()
        {
            int n = Count;
            int rows = 0, columns = 0;
            for (int i = 0; i < n; i++)
            {
                rows = Math.Max(rows, _row[i] / 2 + 1);
                columns = Math.Max(columns, _column[i] / 2 + 1);
            }
            var slot = new int[rows * columns];
            Array.Fill(slot, -1);
            var aggregate = new int[n];
            var coarseRow = new List<int>();
            var coarseColumn = new List<int>();
            for (int i = 0; i < n; i++)
            {
                int key = _row[i] / 2 * columns + _column[i] / 2;
                if (slot[key] < 0)
                {
                    slot[key] = coarseRow.Count;
                    coarseRow.Add(_row[i] / 2);
                    coarseColumn.Add(_column[i] / 2);
                }
                aggregate[i] = slot[key];
            }
            Aggregate = aggregate;
            int m = coarseRow.Count;
            // The members of each aggregate, grouped by a counting sort.
            var memberStart = new int[m + 1];
            foreach (int a in aggregate)
                memberStart[a + 1]++;
            for (int a = 0; a < m; a++)
                memberStart[a + 1] += memberStart[a];
            var members = new int[n];
            var fill = (int[])memberStart.Clone();
            for (int i = 0; i < n; i++)
                members[fill[aggregate[i]]++] = i;
            var diagonal = new double[m];
            var rowStart = new int[m + 1];
            var entryColumn = new List<int>();
            var entryValue = new List<double>();
            var position = new int[m];
            Array.Fill(position, -1);
            for (int a = 0; a < m; a++)
            {
                int first = entryColumn.Count;
                for (int k = memberStart[a]; k < memberStart[a + 1]; k++)
                {
                    int i = members[k];
                    diagonal[a] += _diagonal[i];
                    for (int e = _rowStart[i]; e < _rowStart[i + 1]; e++)
                    {
                        int b = aggregate[_entryColumn[e]];
                        if (b == a)
                        {
                            diagonal[a] += _entryValue[e];
                        }
                        else if (position[b] < 0)
                        {
                            position[b] = entryColumn.Count;
                            entryColumn.Add(b);
                            entryValue.Add(_entryValue[e]);
                        }
                        else
                        {
                            entryValue[position[b]] += _entryValue[e];
                        }
                    }
                }
                for (int e = first; e < entryColumn.Count; e++)
                    position[entryColumn[e]] = -1;
                rowStart[a + 1] = entryColumn.Count;
            }
            return new Level(diagonal, rowStart, [.. entryColumn], [.. entryValue], [.. coarseRow], [.. coarseColumn], _systems);
        }

        public void ForwardGaussSeidel(double[] b, double[] x)
        {
            for (int i = 0; i < _diagonal.Length; i++)
                RowUpdate(i, b, x);
        }

        public void BackwardGaussSeidel(double[] b, double[] x)
        {
            for (int i = _diagonal.Length - 1; i >= 0; i--)
                RowUpdate(i, b, x);
        }

        /// <summary>x_i = (b_i - sum_{j != i} A_ij x_j) / A_ii, for every system.</summary>
        private void RowUpdate(int i, double[] b, double[] x)
        {
            var sums = _sums;
            OffDiagonal(i, x, sums);
            int k = _systems;
            for (int s = 0; s < k; s++)
                x[i * k + s] = (b[i * k + s] - sums[s]) / _diagonal[i];
        }

        /// <summary>r = b - A x, for every system.</summary>
        public void Residual(double[] b, double[] x, double[] r)
        {
            var sums = _sums;
            int k = _systems;
            for (int i = 0; i < _diagonal.Length; i++)
            {
                OffDiagonal(i, x, sums);
                for (int s = 0; s < k; s++)
                    r[i * k + s] = b[i * k + s] - _diagonal[i] * x[i * k + s] - sums[s];
            }
        }

        /// <summary>sums_s = sum_{j != i} A_ij x_(j, s): row i's off-diagonal entries, read once for all systems.</summary>
        private void OffDiagonal(int i, double[] x, double[] sums)
        {
            int k = _systems, end = _rowStart[i + 1];
            if (k == 3)
            {
                double s0 = 0, s1 = 0, s2 = 0;
                for (int e = _rowStart[i]; e < end; e++)
                {
                    double a = _entryValue[e];
                    int j = 3 * _entryColumn[e];
                    s0 += a * x[j];
                    s1 += a * x[j + 1];
                    s2 += a * x[j + 2];
                }
                sums[0] = s0;
                sums[1] = s1;
                sums[2] = s2;
                return;
            }
            Array.Clear(sums);
            for (int e = _rowStart[i]; e < end; e++)
            {
                double a = _entryValue[e];
                int j = k * _entryColumn[e];
                for (int s = 0; s < k; s++)
                    sums[s] += a * x[j + s];
            }
        }

        /// <summary>The lower Cholesky factor L (A = L L^T) of this level's matrix, dense and row-major.</summary>
        public double[] DenseCholesky()
        {
            int n = Count;
            var a = new double[n * n];
            for (int i = 0; i < n; i++)
            {
                a[i * n + i] = _diagonal[i];
                for (int e = _rowStart[i]; e < _rowStart[i + 1]; e++)
                    a[i * n + _entryColumn[e]] = _entryValue[e];
            }
            for (int j = 0; j < n; j++)
            {
                double d = a[j * n + j];
                for (int k = 0; k < j; k++)
                    d -= a[j * n + k] * a[j * n + k];
                if (!(d > 0))
                    throw new CamEngineException($"multigrid: the coarsest matrix is not positive definite (pivot {d})");
                d = Math.Sqrt(d);
                a[j * n + j] = d;
                for (int i = j + 1; i < n; i++)
                {
                    double s = a[i * n + j];
                    for (int k = 0; k < j; k++)
                        s -= a[i * n + k] * a[j * n + k];
                    a[i * n + j] = s / d;
                }
            }
            return a;
        }
    }
}
