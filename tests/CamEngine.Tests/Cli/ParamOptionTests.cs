using CamEngine.Backends;
using CamEngine.Cli;
using CamEngine.Graph;
using CamEngine.IO;
using CamEngine.Methods;
using CamEngine.Tensors;
using CamEngine.Tests.Model;
using NUnit.Framework;

namespace CamEngine.Tests.Cli;

/// <summary><c>cam explain --param</c> and the parameter lines of <c>cam methods</c>.</summary>
[TestFixture]
public sealed class ParamOptionTests : CliTestBase
{
    private static string Device => Environment.GetEnvironmentVariable("CAMENGINE_TEST_DEVICE") ?? "ilgpu-cpu";

    [Test]
    public void Param_sets_the_methods_parameters_and_bad_keys_exit_2_with_the_valid_ones()
    {
        string model = Path.Combine(Dir, "tiny.safetensors");
        File.WriteAllBytes(model, TinyModel.ValidBytes());
        string input = Path.Combine(Dir, "x.npy");
        var x = new HostTensor([1, 3, 8, 8], TensorAssert.Random(new Random(3), 192));
        Npy.Write(input, x);
        var r = Cam("explain", model, input, "--method", "smoothgrad,integrated-gradients", "--param",
            "smoothgrad.samples=2,sigma=0.3,steps=3", "--seed", "4", "--out", Dir, "--npy", "--device", Device);
        Assert.That(r.Code, Is.Zero, r.Err);
        using (var backend = Devices.Open(Device))
        using (var m = DeviceModel.Load(TinyModel.Create(), backend))
        {
            var options = new ExplainOptions { Seed = 4 };
            var direct = new Explainer(m).Explain(x, [new SmoothGrad { Samples = 2, Sigma = 0.3f }, new IntegratedGradients { Steps = 3 }], options);
            TensorAssert.Close(Npy.Read(Path.Combine(Dir, "x.smoothgrad.raw.npy")).Data, direct["smoothgrad"][0].Raw.Data, 0, 0, "smoothgrad");
            TensorAssert.Close(Npy.Read(Path.Combine(Dir, "x.integrated-gradients.raw.npy")).Data,
                direct["integrated-gradients"][0].Raw.Data, 0, 0, "integrated-gradients");
        }
        var bad = Cam("explain", model, input, "--method", "gradcam,smoothgrad", "--param", "steps=3", "--device", Device);
        Assert.That(bad.Code, Is.EqualTo(2), bad.Err);
        Assert.That(bad.Err.TrimEnd().Split('\n'), Has.Length.EqualTo(1), bad.Err);
        Assert.That(bad.Err, Does.Contain("no chosen method has the parameter 'steps'; valid: smoothgrad: samples, sigma"));
        var value = Cam("explain", model, input, "--method", "smoothgrad", "--param", "samples=none", "--device", Device);
        Assert.That(value.Code, Is.EqualTo(2), value.Err);
        Assert.That(value.Err, Does.Contain("smoothgrad: parameter 'samples' must be an integer >= 1, got 'none'"));
        var methods = Cam("methods");
        Assert.That(methods.Out, Does.Contain("\n    samples=25 ").And.Contain("\n    steps=50 ").And.Contain("\n    kernel=sigmoid "));
    }
}
