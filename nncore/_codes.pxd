# The one table of the codes that name an activation, a loss and an optimizer's
# update rule to the kernels. The kernels cimport it (``from nncore._codes cimport
# *``); the Python layer reads the names back from the compiled ``nncore._codes``
# (``codes()``), lower-cased: ``Activation.LEAKY_RELU`` is the activation
# "leaky_relu". Adding one means a row here, its formula in ``nncore/reference/``, its
# branch in the kernels and its tests.
#
# Each table ends with its count (N_...), which is not a code: the kernels' bounds
# checks compare against it.

cpdef enum Activation:
    IDENTITY
    SIGMOID
    TANH
    RELU
    LEAKY_RELU
    ELU
    GELU
    SOFTPLUS
    N_ACTIVATIONS

cpdef enum Loss:
    MSE
    BINARY_CROSS_ENTROPY
    CROSS_ENTROPY
    GAUSSIAN_NLL
    MAE
    HUBER
    POISSON
    QUANTILE
    N_LOSSES

cpdef enum Optimizer:
    SGD
    ADAM
    ADAMW
    RMSPROP
    RPROP
    N_OPTIMIZERS

# What a training call reports (not a table: the Python layer tests for OK).
cpdef enum Status:
    OK
    NONFINITE_LOSS
