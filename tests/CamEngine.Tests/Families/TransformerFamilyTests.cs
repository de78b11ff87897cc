using CamEngine.Backends;
using CamEngine.Graph;
using CamEngine.IO;
using CamEngine.Methods;
using CamEngine.Model;
using CamEngine.Onnx;
using NUnit.Framework;

namespace CamEngine.Tests.Families;

/// <summary>
/// Width-reduced torchvision VisionTransformer and SwinTransformer (tools/fixtures/make_transformer_fixtures.py: the
/// families' own classes with fewer layers and narrower dims, so the same operators and graph structure as vit_b_16
/// and swin_t), exported by PyTorch at opsets 13 and 17: each converts (its shape arithmetic folded, the batch
/// tracked through MultiheadAttention's batch-second transposes and Swin's window reshapes), and on the ILGPU CPU
/// accelerator matches PyTorch (<see cref="FamilyCheck"/>) at the layer users pick: ViT's last ln_1, read by
/// --layout auto as tokens (1+h*w, C), Swin's norm as channels-last (h, w, C). The full-size vit_b_16 and swin_t:
/// <see cref="FullSizeFamilyTests"/>.
/// </summary>
[TestFixture]
public sealed class TransformerFamilyTests
{
    private static string Dir => Path.Combine(FixturePaths.Root, "transformers");

    private const string VitLayer = "encoder.layers.encoder_layer_1.ln_1";
    private const string SwinLayer = "norm";

    public static IEnumerable<TestCaseData> Cases()
    {
        foreach (var (name, layer) in new[] { ("vit", VitLayer), ("swin", SwinLayer) })
        {
            foreach (int opset in new[] { 13, 17 })
                yield return new TestCaseData(name, opset, layer).SetName($"Transformer_{name}_opset{opset}_matches_PyTorch");
        }
    }

    [TestCaseSource(nameof(Cases))]
    public void Transformer_matches_PyTorch(string name, int opset, string layer) =>
        FamilyCheck.Check(Dir, name, opset, layer, TestDevice.Ilgpu, name == "vit" ? LayerLayoutKind.Tokens : LayerLayoutKind.Nhwc);

    /// <summary>
    /// The export is traced at batch 1, where the batch is invisible in the reshape targets (MultiheadAttention's
    /// <c>(L, N * heads, d)</c>, Swin's <c>(N * windows, ws * ws, C)</c>); the converter decides where it sits. Two
    /// different images in one batch must give each image's own logits and input gradient.
    /// </summary>
    [TestCase("vit", 17)]
    [TestCase("swin", 17)]
    [TestCase("vit", 13)]
    public void A_batch_of_two_images_gives_each_its_own_result(string name, int opset)
    {
        var b = TestDevice.Ilgpu;
        var file = OnnxConverter.ConvertFile(Path.Combine(Dir, $"{name}.opset{opset}.onnx"));
        var refs = Npz.Read(Path.Combine(Dir, name + ".npz"));
        using var model = DeviceModel.Load(file, b);
        var one = refs["input"].Data;
        var other = one.Select((v, i) => 0.7f * one[(i * 7 + 3) % one.Length] - 0.2f * v).ToArray();
        float[][] Single(float[] image)
        {
            using var t = b.Upload(image, refs["input"].Shape);
            using var p = model.Forward(t);
            var l = b.Download(p.Output);
            var s = new float[l.Length];
            s[Array.IndexOf(l, l.Max())] = 1f;
            using var st = b.Upload(s, p.Output.Shape);
            using var g = model.Backward(p, st, new BackwardRequest { Input = true });
            return [l, b.Download(g.Input!), s];
        }
        var r0 = Single(one);
        var r1 = Single(other);
        int[] shape = [2, .. refs["input"].Shape[1..]];
        using var x = b.Upload([.. one, .. other], shape);
        using var pass = model.Forward(x);
        var logits = b.Download(pass.Output);
        Assert.That(r0[0], Is.Not.EqualTo(r1[0]), "the two images have different logits");
        TensorAssert.Close(logits, [.. r0[0], .. r1[0]], 1e-5, 1e-4, $"{name} batch-of-2 logits");
        using var seed = b.Upload([.. r0[2], .. r1[2]], pass.Output.Shape);
        using var grads = model.Backward(pass, seed, new BackwardRequest { Input = true });
        var dx = b.Download(grads.Input!);
        double gmax = r0[1].Concat(r1[1]).Max(v => Math.Abs((double)v));
        TensorAssert.Close(dx, [.. r0[1], .. r1[1]], 1e-4 * gmax, 1e-4, $"{name} batch-of-2 input gradients");
    }
}
