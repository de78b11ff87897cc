using System.Text.Json;
using CamEngine.IO;
using CamEngine.Model;
using CamEngine.Onnx;
using NUnit.Framework;

namespace CamEngine.Tests.Methods;

/// <summary>The PyTorch reference fixtures (fixtures/README.md): converted models, inputs and references.</summary>
internal static class FixtureData
{
    private static readonly Dictionary<string, ModelFile> s_models = [];

    public static ModelFile ModelFor(string name)
    {
        lock (s_models)
        {
            if (!s_models.TryGetValue(name, out var m))
                s_models[name] = m = OnnxConverter.ConvertFile(FixturePaths.Onnx(name));
            return m;
        }
    }

    public static IEnumerable<TestCaseData> Cases() =>
        from m in FixturePaths.Models
        from i in FixturePaths.Images
        select new TestCaseData(m, i).SetName($"{m}_{i}");

    public sealed record Reference(NpzArchive Npz, string L0, string L1, int TargetClass)
    {
        public float[] this[string key] => Npz.Arrays[key].Data;

        public int[] Shape(string key) => Npz.Arrays[key].Shape;

        public string Layer(string key) => key == "L0" ? L0 : L1;

        public (string Key, string Layer)[] Layers => [("L0", L0), ("L1", L1)];
    }

    public static Reference Load(string model, string image)
    {
        var npz = Npz.ReadAll(FixturePaths.Refs(model, image));
        using var meta = JsonDocument.Parse(npz.Strings["meta"][0]);
        var layers = meta.RootElement.GetProperty("target_layers");
        return new Reference(npz, layers.GetProperty("L0").GetString()!, layers.GetProperty("L1").GetString()!,
            meta.RootElement.GetProperty("target_class").GetInt32());
    }

    public static float[] MinMax(float[] v)
    {
        var r = (float[])v.Clone();
        CamEngine.Imaging.MapOps.MinMaxNormalize(r);
        return r;
    }

    public static float[] Relu(float[] v) => v.Select(x => Math.Max(x, 0f)).ToArray();
}
