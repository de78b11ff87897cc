namespace CamEngine.Tests;

/// <summary>Paths of the PyTorch reference fixtures copied to the test output folder.</summary>
public static class FixturePaths
{
    public static string Root => Path.Combine(NUnit.Framework.TestContext.CurrentContext.TestDirectory, "fixtures");

    /// <summary>A file of the autodiff fixtures (tools/fixtures/make_autodiff_fixtures.py).</summary>
    public static string Autodiff(string file) => Path.Combine(Root, "autodiff", file);

    public static string Onnx(string model) => Path.Combine(Root, "models", model + ".onnx");

    public static string Input(string image) => Path.Combine(Root, "inputs", image + "_32_imagenet.npy");

    public static string Refs(string model, string image) => Path.Combine(Root, "refs", model, image + ".npz");

    public static readonly string[] Models = ["tiny_gapcnn", "tiny_resnet"];

    public static readonly string[] Images = ["astronaut", "chelsea", "coffee", "rocket"];
}
