namespace CamEngine.Imaging;

/// <summary>
/// Colormaps for saliency maps, 256 RGB entries in [0, 1] each (RGB order), looked up as matplotlib does:
/// index = clip(floor(v * 256), 0, 255) (<see cref="Index"/>).
/// <para>'jet' is matplotlib's piecewise-linear segment data <c>_jet_data</c> sampled at i / 255 for i = 0..255
/// (<c>LinearSegmentedColormap</c> with N = 256). OpenCV's <c>COLORMAP_JET</c> (and so pytorch-grad-cam's default
/// heatmap, which is also BGR) differs slightly; we match matplotlib.</para>
/// <para>'viridis', 'inferno' and 'turbo' are matplotlib's listed tables, embedded as data
/// (<see cref="ColormapTables"/>): viridis and inferno by van der Walt and Smith under CC0 1.0, Turbo by Google LLC
/// under the Apache License 2.0.</para>
/// </summary>
internal static class Colormap
{
    /// <summary>Number of table entries.</summary>
    public const int Size = 256;

    // (x, y) anchors per channel; matplotlib's y0 == y1 at every anchor of jet, so one value per anchor.
    private static readonly double[][] RedSegments = [[0, 0], [0.35, 0], [0.66, 1], [0.89, 1], [1, 0.5]];
    private static readonly double[][] GreenSegments = [[0, 0], [0.125, 0], [0.375, 1], [0.64, 1], [0.91, 0], [1, 0]];
    private static readonly double[][] BlueSegments = [[0, 0.5], [0.11, 1], [0.34, 1], [0.65, 0], [1, 0]];

    private static readonly float[] JetTable = BuildJet();

    /// <summary>The 256 x 3 table of jet colours in [0, 1], entry i at [3i], [3i + 1], [3i + 2] (R, G, B).</summary>
    public static ReadOnlySpan<float> Jet => JetTable;

    /// <summary>The jet colour of <paramref name="v"/> (values outside [0, 1] take the end colours;
    /// NaN takes the first colour).</summary>
    public static (float R, float G, float B) JetColor(float v)
    {
        int i = Index(v);
        return (JetTable[3 * i], JetTable[3 * i + 1], JetTable[3 * i + 2]);
    }

    /// <summary>The names <see cref="Parse"/> accepts, in <see cref="ColormapKind"/> order.</summary>
    public static IReadOnlyList<string> Names { get; } =
        Enum.GetValues<ColormapKind>().Select(k => k.ToString().ToLowerInvariant()).ToArray();

    /// <summary>The colormap named <paramref name="name"/> (jet, viridis, turbo or inferno; case-insensitive).
    /// Throws <see cref="CamEngineException"/> naming the choices for any other name.</summary>
    public static ColormapKind Parse(string name)
    {
        ArgumentNullException.ThrowIfNull(name);
        for (int i = 0; i < Names.Count; i++)
        {
            if (Names[i].Equals(name.Trim(), StringComparison.OrdinalIgnoreCase))
                return (ColormapKind)i;
        }
        throw new CamEngineException($"unknown colormap '{name}': use {string.Join(", ", Names)}");
    }

    /// <summary>The 256 x 3 table of the colormap named <paramref name="name"/> (see <see cref="Parse"/>).</summary>
    public static ReadOnlySpan<float> Get(string name) => Table(Parse(name));

    /// <summary>The 256 x 3 table of <paramref name="kind"/>, entry i at [3i], [3i + 1], [3i + 2] (R, G, B).</summary>
    public static ReadOnlySpan<float> Table(ColormapKind kind) => kind switch
    {
        ColormapKind.Jet => JetTable,
        ColormapKind.Viridis => ColormapTables.Viridis,
        ColormapKind.Turbo => ColormapTables.Turbo,
        ColormapKind.Inferno => ColormapTables.Inferno,
        _ => throw new ArgumentOutOfRangeException(nameof(kind), kind, "unknown colormap"),
    };

    /// <summary>The colour of <paramref name="v"/> in <paramref name="kind"/> (values outside [0, 1] take the end
    /// colours; NaN takes the first colour).</summary>
    public static (float R, float G, float B) Color(ColormapKind kind, float v)
    {
        var table = Table(kind);
        int i = Index(v);
        return (table[3 * i], table[3 * i + 1], table[3 * i + 2]);
    }

    /// <summary>matplotlib's lookup: floor(v * 256) clipped to [0, 255]; v = 1 maps to the last entry.</summary>
    public static int Index(float v)
    {
        if (float.IsNaN(v))
            return 0;
        float x = v * Size;
        return x >= Size - 1 ? Size - 1 : x <= 0 ? 0 : (int)x;
    }

    private static float[] BuildJet()
    {
        var table = new float[Size * 3];
        double[][][] channels = [RedSegments, GreenSegments, BlueSegments];
        for (int c = 0; c < 3; c++)
        {
            for (int i = 0; i < Size; i++)
                table[3 * i + c] = (float)Interpolate(channels[c], i / (double)(Size - 1));
        }
        return table;
    }

    private static double Interpolate(double[][] anchors, double x)
    {
        if (x <= anchors[0][0])
            return anchors[0][1];
        for (int k = 1; k < anchors.Length; k++)
        {
            if (x <= anchors[k][0])
            {
                double x0 = anchors[k - 1][0], x1 = anchors[k][0];
                double t = (x - x0) / (x1 - x0);
                return Math.Clamp(anchors[k - 1][1] + t * (anchors[k][1] - anchors[k - 1][1]), 0, 1);
            }
        }
        return anchors[^1][1];
    }
}
