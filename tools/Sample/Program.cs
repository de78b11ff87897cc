// Explains one image with Grad-CAM through the CamEngine library.
// usage: dotnet run --project tools/Sample [MODEL] [IMAGE] [OUTPUT.png]
using CamEngine;

string modelPath = args.Length > 0 ? args[0] : "models/tiny_resnet.safetensors";
string imagePath = args.Length > 1 ? args[1] : "models/images/chelsea.png";
string output = args.Length > 2 ? args[2] : Path.GetFileNameWithoutExtension(imagePath) + ".gradcam.png";

using var model = CamModel.Load(modelPath);                 // device: auto (CUDA, OpenCL, else the CPU)
var result = model.Explain(imagePath, "gradcam");           // top-1 class, the model's default layer
Console.WriteLine($"class {result.ClassIndex} ({result.Label ?? "no label"}), score {result.Score:F3}, device {model.DeviceName}");
result.SaveOverlayPng(output);                              // the whole photo, the model's crop outlined
Console.WriteLine($"wrote {output}");
