using System.Globalization;

namespace CamEngine.Cli;

/// <summary>
/// One part of a sharded run: shard <see cref="Index"/> of <see cref="Count"/> takes the inputs whose position in the
/// sorted input list is congruent to the index modulo the count (round robin: the shards get sizes within one of each
/// other, and the union of all shards is the whole list, each input exactly once).
/// </summary>
internal readonly record struct Shard(int Index, int Count)
{
    public static readonly Shard All = new(0, 1);

    /// <summary>The Kubernetes Indexed Job count variable: Kubernetes sets JOB_COMPLETION_INDEX but not the count, so
    /// the Job's manifest sets this one to its <c>completions</c> (see docs/cluster.md).</summary>
    public const string KubernetesCountVariable = "CAM_SHARD_COUNT";

    public bool Takes(int position) => position % Count == Index;

    public override string ToString() => Count == 1 ? "all" : string.Create(CultureInfo.InvariantCulture, $"{Index}/{Count}");

    /// <summary><c>i/n</c> (0 &lt;= i &lt; n), or <c>auto</c>: SLURM_ARRAY_TASK_ID with SLURM_ARRAY_TASK_COUNT (and
    /// SLURM_ARRAY_TASK_MIN, 0 when unset, subtracted from the id), else JOB_COMPLETION_INDEX with
    /// CAM_SHARD_COUNT.</summary>
    public static Shard Parse(string text, Func<string, string?>? environment = null)
    {
        environment ??= Environment.GetEnvironmentVariable;
        string t = text.Trim();
        if (t.Equals("auto", StringComparison.OrdinalIgnoreCase))
            return FromEnvironment(environment);
        int slash = t.IndexOf('/', StringComparison.Ordinal);
        if (slash <= 0
            || !int.TryParse(t.AsSpan(0, slash), NumberStyles.None, CultureInfo.InvariantCulture, out int i)
            || !int.TryParse(t.AsSpan(slash + 1), NumberStyles.None, CultureInfo.InvariantCulture, out int n)
            || n < 1 || i >= n)
            throw new UsageException($"--shard must be i/n with 0 <= i < n (e.g. 0/4), or auto; got '{text}'");
        return new Shard(i, n);
    }

    private static Shard FromEnvironment(Func<string, string?> env)
    {
        if (env("SLURM_ARRAY_TASK_ID") is { } id)
        {
            string count = env("SLURM_ARRAY_TASK_COUNT")
                ?? throw new UsageException("--shard auto: SLURM_ARRAY_TASK_ID is set but SLURM_ARRAY_TASK_COUNT is not");
            int min = env("SLURM_ARRAY_TASK_MIN") is { } m ? Number("SLURM_ARRAY_TASK_MIN", m) : 0;
            return Checked(Number("SLURM_ARRAY_TASK_ID", id) - min, Number("SLURM_ARRAY_TASK_COUNT", count), "SLURM_ARRAY_TASK_ID - SLURM_ARRAY_TASK_MIN");
        }
        if (env("JOB_COMPLETION_INDEX") is { } index)
        {
            string count = env(KubernetesCountVariable)
                ?? throw new UsageException($"--shard auto: JOB_COMPLETION_INDEX is set but {KubernetesCountVariable} is not (set it to the Job's completions)");
            return Checked(Number("JOB_COMPLETION_INDEX", index), Number(KubernetesCountVariable, count), "JOB_COMPLETION_INDEX");
        }
        throw new UsageException(
            $"--shard auto needs SLURM_ARRAY_TASK_ID and SLURM_ARRAY_TASK_COUNT (a Slurm job array) or JOB_COMPLETION_INDEX and {KubernetesCountVariable} (a Kubernetes Indexed Job)");
    }

    private static Shard Checked(int index, int count, string what) =>
        count >= 1 && index >= 0 && index < count
            ? new Shard(index, count)
            : throw new UsageException(string.Create(CultureInfo.InvariantCulture, $"--shard auto: {what} is {index}, outside 0..{count - 1}"));

    private static int Number(string name, string value) =>
        int.TryParse(value.Trim(), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out int v)
            ? v
            : throw new UsageException($"--shard auto: {name} is '{value}', not an integer");
}
