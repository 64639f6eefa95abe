// int8 weight-only quantisation of a loaded model, in place, for inference:
//
//   clipcap::quantize_linears_int8(*captioner.gpt2());   // every linear's weight, and the LM head
//
// What becomes int8 (per output channel, model/kernels/int8_linear.h): the weights of every
// Linear, GPT-2 Conv1D and mapping attention input projection, and GPT-2's LM head (untied from
// wte first: the embedding lookup keeps wte in the model's dtype, the head streams the int8 copy).
// Embeddings, layer norms and biases stay in the model's dtype; so do activations.
#pragma once

#include <torch/nn/module.h>

namespace clipcap {

// Returns the number of weight matrices quantised.
int quantize_linears_int8(torch::nn::Module& root);

}  // namespace clipcap
