namespace CamEngine.Methods;

/// <summary>Seeded normal noise (Box-Muller over <see cref="Random"/>): the same seed draws the same numbers.</summary>
internal static class GaussianNoise
{
    /// <summary>Fills <paramref name="values"/> with draws of N(0, <paramref name="std"/>^2).</summary>
    public static void Fill(Random random, Span<float> values, double std)
    {
        ArgumentNullException.ThrowIfNull(random);
        for (int i = 0; i < values.Length; i += 2)
        {
            double u1 = 1.0 - random.NextDouble(), u2 = random.NextDouble();
            double r = Math.Sqrt(-2.0 * Math.Log(u1)) * std;
            values[i] = (float)(r * Math.Cos(2 * Math.PI * u2));
            if (i + 1 < values.Length)
                values[i + 1] = (float)(r * Math.Sin(2 * Math.PI * u2));
        }
    }
}
