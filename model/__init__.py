"""MIND in PaddlePaddle: network, data, training, evaluation, export and batched serving."""
