using CamEngine.Graph;
using CamEngine.IO;
using CamEngine.Methods;
using NUnit.Framework;

namespace CamEngine.Tests.Methods;

/// <summary>The references of tools/fixtures/make_method_fixtures.py (fixtures/methods/MODEL_IMAGE.npz) and the shared
/// helpers of the tests that compare the issue-20 methods with them.</summary>
internal static class MethodFixtures
{
    public static readonly string[] Images = ["chelsea", "coffee"];

    public static IEnumerable<TestCaseData> Cases() =>
        from m in FixturePaths.Models
        from i in Images
        select new TestCaseData(m, i).SetName($"{m}_{i}");

    public static NpzArchive Load(string model, string image) =>
        Npz.ReadAll(Path.Combine(FixturePaths.Root, "methods", $"{model}_{image}.npz"));

    public static float[] Get(this NpzArchive npz, string key) => npz.Arrays[key].Data;

    public static Explanation Explain(string modelName, string image, CamMethod method, string? layer = null,
        Convention convention = Convention.PytorchGradCam, int batch = 32)
    {
        using var model = DeviceModel.Load(FixtureData.ModelFor(modelName), TestDevice.Cpu);
        var input = Npy.Read(FixturePaths.Input(image));
        return new Explainer(model).Explain(input, method, new ExplainOptions
        {
            Layers = layer == null ? [] : [layer], Convention = convention, PerturbationBatch = batch,
        })[0];
    }

    /// <summary>Asserts |a - b| &lt;= tol * max|b| everywhere and reports the worst error relative to max|b|.</summary>
    public static double AssertClose(ReadOnlySpan<float> actual, ReadOnlySpan<float> expected, double tol, string what)
    {
        Assert.That(actual.Length, Is.EqualTo(expected.Length), $"{what}: length");
        double scale = 0, worst = 0;
        foreach (float v in expected)
            scale = Math.Max(scale, Math.Abs(v));
        Assert.That(scale, Is.GreaterThan(0), $"{what}: the reference is all zeros");
        int worstAt = 0;
        for (int i = 0; i < actual.Length; i++)
        {
            double e = Math.Abs(actual[i] - expected[i]);
            if (!(e <= worst))
            {
                worst = e;
                worstAt = i;
            }
        }
        double relative = worst / scale;
        TestContext.Out.WriteLine($"{what}: max |error| {worst:G3} = {relative:G3} of max |ref| {scale:G3}");
        Assert.That(relative, Is.LessThanOrEqualTo(tol),
            $"{what}: [{worstAt}] {actual[worstAt]:G9} vs {expected[worstAt]:G9}, {relative:G3} of max |ref| {scale:G3}");
        return relative;
    }
}
